"""The ``wfrun`` command: serve, worker, and the operator's admin commands.

Admin commands talk to the services directly (no HTTP). Settings come from ``WFRUN_*``
variables and ``WFRUN_CONFIG``; ``--data-dir`` overrides the data directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from wfrun import __version__
from wfrun.cli.output import emit, plain
from wfrun.cli.processes import serve, worker
from wfrun.config import Settings, load_settings
from wfrun.db.audit import ledger_problems
from wfrun.db.migrate import current_revision, head_revision
from wfrun.domain.money import parse_amount
from wfrun.errors import InvalidParameter, ServiceError
from wfrun.runtime import Runtime, build_runtime
from wfrun.services import accounts, catalog, instances
from wfrun.services.seedance_check import Check, check_seedance

T = TypeVar("T")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def run_async(ctx: click.Context, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Build a runtime, run ``work`` with it, close it; ServiceErrors exit with status 1."""

    async def main() -> T:
        runtime = await build_runtime(_settings(ctx))
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        click.echo(f"error: {exc.engine_code}: {exc.detail}", err=True)
        sys.exit(1)


@click.group()
@click.version_option(__version__, prog_name="wfrun")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (default .wfrun, or WFRUN_DATA_DIR).",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """wfrun: sell AI workflow runs over a chenyu-compatible API."""
    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    if isinstance(ctx.obj, Settings):  # embedding callers (and tests) pass settings in
        ctx.obj = ctx.obj.model_copy(update=overrides)
    else:
        ctx.obj = load_settings(**overrides)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cli()


# ---- db ----------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply all migrations (also done on every start)."""

    async def work(rt: Runtime) -> str | None:
        return await current_revision(rt.db)

    click.echo(f"database at revision {run_async(ctx, work)} (head {head_revision()})")


# ---- accounts ----------------------------------------------------------------------------------


@cli.group("accounts")
def accounts_group() -> None:
    """Customer accounts and their balances."""


@accounts_group.command("create")
@click.argument("display_name")
@json_option
@click.pass_context
def accounts_create(ctx: click.Context, display_name: str, as_json: bool) -> None:
    """Create an account; prints its id."""

    async def work(rt: Runtime) -> Any:
        account_id = await accounts.create_account(rt.db, display_name=display_name)
        return await accounts.get_account(rt.db, account_id)

    row = plain(run_async(ctx, work))
    emit(row, as_json=as_json, text=row["id"])


@accounts_group.command("topup")
@click.argument("account_id")
@click.argument("amount")
@click.option("--memo", default="", help="Why the credit was added.")
@json_option
@click.pass_context
def accounts_topup(
    ctx: click.Context, account_id: str, amount: str, memo: str, as_json: bool
) -> None:
    """Add AMOUNT yuan (e.g. 12.50) of credit to ACCOUNT_ID."""
    try:
        minor = parse_amount(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from None

    async def work(rt: Runtime) -> Any:
        if minor <= 0:
            raise InvalidParameter(f"amount must be positive, got {amount}")
        return await accounts.top_up(rt.db, account_id=account_id, amount=minor, memo=memo)

    row = plain(run_async(ctx, work))
    emit(row, as_json=as_json, text=f"{row['id']} available {row['available']} CNY")


@accounts_group.command("show")
@click.argument("account_id")
@json_option
@click.pass_context
def accounts_show(ctx: click.Context, account_id: str, as_json: bool) -> None:
    """Show an account's balances."""

    async def work(rt: Runtime) -> Any:
        return await accounts.get_account(rt.db, account_id)

    emit(plain(run_async(ctx, work)), as_json=as_json)


@accounts_group.command("list")
@json_option
@click.pass_context
def accounts_list(ctx: click.Context, as_json: bool) -> None:
    """List accounts."""

    async def work(rt: Runtime) -> Any:
        return [plain(r) for r in await accounts.list_accounts(rt.db)]

    emit(run_async(ctx, work), as_json=as_json)


# ---- keys --------------------------------------------------------------------------------------


@cli.group("keys")
def keys_group() -> None:
    """API keys (shown once, stored hashed)."""


@keys_group.command("create")
@click.argument("account_id")
@click.option("--name", default="", help="A label for the key.")
@json_option
@click.pass_context
def keys_create(ctx: click.Context, account_id: str, name: str, as_json: bool) -> None:
    """Create an API key for ACCOUNT_ID; the secret is printed once."""

    async def work(rt: Runtime) -> accounts.CreatedKey:
        return await accounts.create_key(rt.db, account_id=account_id, name=name)

    key = run_async(ctx, work)
    data = {"key_id": key.key_id, "account_id": key.account_id, "api_key": key.secret}
    emit(data, as_json=as_json, text=key.secret)


@keys_group.command("revoke")
@click.argument("key_id")
@json_option
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke a key by its id (key_…)."""

    async def work(rt: Runtime) -> bool:
        return await accounts.revoke_key(rt.db, key_id)

    changed = run_async(ctx, work)
    emit(
        {"key_id": key_id, "revoked": True, "changed": changed},
        as_json=as_json,
        text=f"{key_id} revoked" if changed else f"{key_id} was already revoked",
    )


@keys_group.command("list")
@click.option("--account", "account_id", default=None, help="Only this account's keys.")
@json_option
@click.pass_context
def keys_list(ctx: click.Context, account_id: str | None, as_json: bool) -> None:
    """List keys (ids and prefixes, never secrets)."""

    async def work(rt: Runtime) -> Any:
        keys = await accounts.list_keys(rt.db, account_id)
        return [plain(key, omit={"key_hash"}) for key in keys]

    emit(run_async(ctx, work), as_json=as_json)


# ---- workflows ---------------------------------------------------------------------------------


@cli.group("workflows")
def workflows_group() -> None:
    """Workflow packages, revisions and publishing."""


@workflows_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--owner", "owner_id", required=True, help="Account that owns the workflow.")
@click.option("--publish", is_flag=True, help="Publish the new revision immediately.")
@json_option
@click.pass_context
def workflows_import(
    ctx: click.Context, file: Path, owner_id: str, publish: bool, as_json: bool
) -> None:
    """Import a workflow package FILE (see docs/workflow-package.md) as a new revision."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        click.echo(f"error: INVALID_WORKFLOW_PACKAGE: {file} is not JSON: {exc}", err=True)
        sys.exit(1)

    async def work(rt: Runtime) -> catalog.ImportResult:
        info = None
        if isinstance(document, dict) and document.get("engine") == "comfyui":
            info = await instances.fetch_object_info(rt.db)
        return await catalog.import_package(
            rt.db, owner_id=owner_id, document=document, publish=publish, object_info=info
        )

    result = run_async(ctx, work)
    data = {
        "workflow_id": result.workflow_id,
        "revision_id": result.revision_id,
        "revision_number": result.revision_number,
        "created_workflow": result.created_workflow,
        "published": result.published,
    }
    emit(
        data,
        as_json=as_json,
        text=f"{result.workflow_id} revision {result.revision_number} ({result.revision_id})"
        + (" published" if publish else ""),
    )


@workflows_group.command("publish")
@click.argument("workflow_id")
@click.option("--revision", "revision_id", default=None, help="Default: the newest revision.")
@json_option
@click.pass_context
def workflows_publish(
    ctx: click.Context, workflow_id: str, revision_id: str | None, as_json: bool
) -> None:
    """Publish a revision of WORKFLOW_ID."""

    async def work(rt: Runtime) -> str:
        return await catalog.publish(rt.db, workflow_id=workflow_id, revision_id=revision_id)

    chosen = run_async(ctx, work)
    emit(
        {"workflow_id": workflow_id, "published_revision_id": chosen},
        as_json=as_json,
        text=f"{workflow_id} now serves {chosen}",
    )


@workflows_group.command("list")
@json_option
@click.pass_context
def workflows_list(ctx: click.Context, as_json: bool) -> None:
    """List workflows."""

    async def work(rt: Runtime) -> Any:
        return [plain(r) for r in await catalog.list_all(rt.db)]

    emit(run_async(ctx, work), as_json=as_json)


@workflows_group.command("show")
@click.argument("workflow_id")
@json_option
@click.pass_context
def workflows_show(ctx: click.Context, workflow_id: str, as_json: bool) -> None:
    """Show a workflow and its revisions."""

    async def work(rt: Runtime) -> Any:
        detail = await catalog.describe(rt.db, workflow_id)
        return {**plain(detail.workflow), "revisions": [plain(r) for r in detail.revisions]}

    emit(run_async(ctx, work), as_json=True)  # nested data reads best as JSON either way


# ---- instances ---------------------------------------------------------------------------------


@cli.group("instances")
def instances_group() -> None:
    """ComfyUI servers that run comfyui workflows."""


@instances_group.command("add")
@click.argument("url")
@click.option(
    "--capacity",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Prompts wfrun keeps queued on it at once (ComfyUI runs one at a time).",
)
@click.option("--label", "labels", multiple=True, help="key=value, e.g. gpu=a100 (repeatable).")
@json_option
@click.pass_context
def instances_add(
    ctx: click.Context, url: str, capacity: int, labels: tuple[str, ...], as_json: bool
) -> None:
    """Register a ComfyUI server at URL (e.g. http://10.0.0.5:8188)."""

    async def work(rt: Runtime) -> Any:
        return await instances.add_instance(
            rt.db, url=url, capacity=capacity, labels=instances.parse_labels(labels)
        )

    row = plain(run_async(ctx, work))
    emit(row, as_json=as_json, text=f"{row['id']} {row['url']}")


@instances_group.command("list")
@json_option
@click.pass_context
def instances_list(ctx: click.Context, as_json: bool) -> None:
    """List instances with state, health and runs in flight."""

    async def work(rt: Runtime) -> Any:
        return [plain(r) for r in await instances.list_instances(rt.db)]

    emit(run_async(ctx, work), as_json=as_json)


@instances_group.command("drain")
@click.argument("instance")
@click.option("--resume", is_flag=True, help="Take new runs again.")
@json_option
@click.pass_context
def instances_drain(ctx: click.Context, instance: str, resume: bool, as_json: bool) -> None:
    """Stop giving INSTANCE (id or URL) new runs; the ones it has finish."""

    async def work(rt: Runtime) -> Any:
        return await instances.drain_instance(rt.db, instance, resume=resume)

    row = plain(run_async(ctx, work))
    emit(row, as_json=as_json, text=f"{row['id']} {row['state']}")


@instances_group.command("remove")
@click.argument("instance")
@json_option
@click.pass_context
def instances_remove(ctx: click.Context, instance: str, as_json: bool) -> None:
    """Unregister INSTANCE (id or URL); refused while it has runs in flight."""

    async def work(rt: Runtime) -> None:
        await instances.remove_instance(rt.db, instance)

    run_async(ctx, work)
    emit({"removed": instance}, as_json=as_json, text=f"{instance} removed")


# ---- ledger ------------------------------------------------------------------------------------


@cli.group("ledger")
def ledger_group() -> None:
    """Books."""


@ledger_group.command("check")
@click.pass_context
def ledger_check(ctx: click.Context) -> None:
    """Verify the ledger invariants; exits 1 and lists problems if any fail."""

    async def work(rt: Runtime) -> list[str]:
        async with rt.db.transaction() as conn:
            return await ledger_problems(conn)

    problems = run_async(ctx, work)
    for problem in problems:
        click.echo(problem)
    click.echo("ledger balances" if not problems else f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


# ---- seedance ----------------------------------------------------------------------------------


@cli.group("seedance")
def seedance_group() -> None:
    """Volcengine Ark (Seedance video)."""


@seedance_group.command("check")
@json_option
@click.pass_context
def seedance_check(ctx: click.Context, as_json: bool) -> None:
    """Check the Ark API key, the AK/SK and the default real-person group; exits 1 on failure."""

    async def work(rt: Runtime) -> list[Check]:
        return await check_seedance(rt.seedance)

    checks = run_async(ctx, work)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], ensure_ascii=False))
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    sys.exit(0 if all(c.ok for c in checks) else 1)


cli.add_command(serve)
cli.add_command(worker)
