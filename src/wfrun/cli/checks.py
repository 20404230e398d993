"""``wfrun db``, ``wfrun ledger`` and ``wfrun seedance``: the schema and health checks."""

from __future__ import annotations

import json
import sys

import click

from wfrun.cli.common import json_option, run_async
from wfrun.db.audit import ledger_problems
from wfrun.db.migrate import current_revision, head_revision
from wfrun.runtime import Runtime
from wfrun.services.seedance_check import Check, check_seedance

# ---- db ----------------------------------------------------------------------------------------


@click.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply all migrations (also done on every start)."""

    async def work(rt: Runtime) -> str | None:
        return await current_revision(rt.db)

    click.echo(f"database at revision {run_async(ctx, work)} (head {head_revision()})")


# ---- ledger ------------------------------------------------------------------------------------


@click.group("ledger")
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


@click.group("seedance")
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
