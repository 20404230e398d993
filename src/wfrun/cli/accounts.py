"""``wfrun accounts`` and ``wfrun keys``: customers, their credit and their API keys."""

from __future__ import annotations

from typing import Any

import click

from wfrun.cli import console_admin
from wfrun.cli.common import json_option, run_async
from wfrun.cli.output import emit, plain
from wfrun.domain.money import parse_amount
from wfrun.errors import InvalidParameter
from wfrun.runtime import Runtime
from wfrun.services import accounts

# ---- accounts ----------------------------------------------------------------------------------


@click.group("accounts")
def accounts_group() -> None:
    """Customer accounts and their balances."""


@accounts_group.command("create")
@click.argument("display_name")
@console_admin.operator_option
@json_option
@click.pass_context
def accounts_create(ctx: click.Context, display_name: str, operator: bool, as_json: bool) -> None:
    """Create an account; prints its id."""

    async def work(rt: Runtime) -> Any:
        account_id = await accounts.create_account(rt.db, display_name=display_name)
        if operator:
            await console_admin.make_operator(rt, account_id)
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


accounts_group.add_command(console_admin.invite_command)
accounts_group.add_command(console_admin.set_role_command)


# ---- keys --------------------------------------------------------------------------------------


@click.group("keys")
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
