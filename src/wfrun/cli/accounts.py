"""``wfrun accounts`` and ``wfrun keys``: customers, their credit and their API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from wfrun.cli import account_limits, console_admin
from wfrun.cli.common import amount_of, json_option, run_db
from wfrun.cli.output import emit, plain
from wfrun.db.database import Database
from wfrun.domain.money import format_amount
from wfrun.errors import InsufficientBalance, InvalidParameter
from wfrun.services import accounts, spending

if TYPE_CHECKING:
    from wfrun.services.operator import Adjustment

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

    async def work(db: Database) -> Any:
        account_id = await accounts.create_account(db, display_name=display_name)
        if operator:
            await console_admin.make_operator(db, account_id)
        return await accounts.get_account(db, account_id)

    row = plain(run_db(ctx, work))
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
    minor = amount_of(amount, "AMOUNT")

    async def work(db: Database) -> Any:
        if minor <= 0:
            raise InvalidParameter(f"amount must be positive, got {amount}")
        return await accounts.top_up(db, account_id=account_id, amount=minor, memo=memo)

    row = plain(run_db(ctx, work))
    emit(row, as_json=as_json, text=f"{row['id']} available {row['available']} CNY")


@accounts_group.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("account_id")
@click.argument("amount")
@click.option("--memo", required=True, help="Why (kept in the ledger).")
@click.option("--allow-negative", is_flag=True, help="Let a debit take available below zero.")
@json_option
@click.pass_context
def accounts_adjust(
    ctx: click.Context,
    account_id: str,
    amount: str,
    memo: str,
    allow_negative: bool,
    as_json: bool,
) -> None:
    """Correct ACCOUNT_ID's available balance by AMOUNT yuan: 5.00 credits, -5.00 debits.

    One balanced ledger entry (kind adjust) with the memo; history is never edited."""
    minor = amount_of(amount, "AMOUNT")

    from wfrun.services import operator  # only this command posts corrections

    async def work(db: Database) -> Adjustment:
        return await operator.adjust_balance(
            db, account_id=account_id, amount=minor, memo=memo, allow_negative=allow_negative
        )

    row = plain(run_db(ctx, work, refusals=(InsufficientBalance,)))
    emit(
        row,
        as_json=as_json,
        text=f"{row['entry_id']} {account_id} available {row['available']} CNY",
    )


@accounts_group.command("show")
@click.argument("account_id")
@json_option
@click.pass_context
def accounts_show(ctx: click.Context, account_id: str, as_json: bool) -> None:
    """Show an account's balances."""

    async def work(db: Database) -> Any:
        return await accounts.get_account(db, account_id)

    emit(plain(run_db(ctx, work)), as_json=as_json)


@accounts_group.command("list")
@json_option
@click.pass_context
def accounts_list(ctx: click.Context, as_json: bool) -> None:
    """List accounts."""

    async def work(db: Database) -> Any:
        return [plain(r) for r in await accounts.list_accounts(db)]

    emit(run_db(ctx, work), as_json=as_json)


accounts_group.add_command(console_admin.invite_command)
accounts_group.add_command(account_limits.limits_command)
accounts_group.add_command(console_admin.set_role_command)


# ---- keys --------------------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """API keys (shown once, stored hashed)."""


_PERIOD = click.option(
    "--period",
    type=click.Choice(["day", "month", "total"]),
    default="month",
    show_default=True,
    help="What --spend-limit counts: per UTC day, per UTC month, or in total (never resets).",
)


def _spend_limit(text: str | None) -> int | None:
    minor = None if text is None else amount_of(text, "--spend-limit")
    if minor is not None and minor < 0:
        raise click.BadParameter("must not be negative", param_hint="--spend-limit")
    return minor


@keys_group.command("create")
@click.argument("account_id")
@click.option("--name", default="", help="A label for the key.")
@click.option("--spend-limit", default=None, help="Most the key may spend per --period (yuan).")
@_PERIOD
@json_option
@click.pass_context
def keys_create(
    ctx: click.Context,
    account_id: str,
    name: str,
    spend_limit: str | None,
    period: str,
    as_json: bool,
) -> None:
    """Create an API key for ACCOUNT_ID; the secret is printed once."""
    limit = _spend_limit(spend_limit)

    async def work(db: Database) -> accounts.CreatedKey:
        key = await accounts.create_key(db, account_id=account_id, name=name)
        if limit is not None:
            await spending.set_key_limit(db, key.key_id, limit, period)
        return key

    key = run_db(ctx, work)
    data = {"key_id": key.key_id, "account_id": key.account_id, "api_key": key.secret}
    emit(data, as_json=as_json, text=key.secret)


@keys_group.command("limit")
@click.argument("key_id")
@click.option("--spend-limit", default=None, help="Most the key may spend per --period (yuan).")
@click.option("--no-limit", is_flag=True, help="Remove the key's spend limit.")
@_PERIOD
@json_option
@click.pass_context
def keys_limit(
    ctx: click.Context,
    key_id: str,
    spend_limit: str | None,
    no_limit: bool,
    period: str,
    as_json: bool,
) -> None:
    """Set (--spend-limit AMOUNT --period …) or remove (--no-limit) KEY_ID's spend limit.

    A submit whose quote would take the key's frozen + spent (net of refunds) in the period
    past the limit is refused (402 SPEND_LIMIT_EXCEEDED)."""
    if (spend_limit is None) == (not no_limit):
        raise click.UsageError("give either --spend-limit AMOUNT or --no-limit")
    limit = _spend_limit(spend_limit)

    async def work(db: Database) -> dict[str, Any]:
        await spending.set_key_limit(db, key_id, limit, period)
        return _limit_fields((await spending.key_limits(db, [key_id]))[key_id])

    row = run_db(ctx, work)
    shown = "no limit" if limit is None else f"{row['spend_limit']} CNY per {period}"
    emit({"key_id": key_id} | row, as_json=as_json, text=f"{key_id} spend limit: {shown}")


def _limit_fields(view: spending.KeyLimitView) -> dict[str, Any]:
    """A key's limit as listed: the limit and what it used in the current period."""
    limit = view.spend_limit
    return {
        "spend_limit": None if limit is None else format_amount(limit),
        "spend_period": view.period,
        "period_key": view.period_key,
        "period_frozen": format_amount(view.frozen),
        "period_spent": format_amount(view.spent),
    }


@keys_group.command("revoke")
@click.argument("key_id")
@json_option
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke a key by its id (key_…)."""

    async def work(db: Database) -> bool:
        return await accounts.revoke_key(db, key_id)

    changed = run_db(ctx, work)
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

    async def work(db: Database) -> Any:
        keys = await accounts.list_keys(db, account_id)
        limits = await spending.key_limits(db, [key.id for key in keys])
        return [plain(key, omit={"key_hash"}) | _limit_fields(limits[key.id]) for key in keys]

    emit(run_db(ctx, work), as_json=as_json)
