"""Console administration from the CLI: ``wfrun accounts invite`` (a one-time link to set a
console password), ``wfrun accounts set-role`` and the ``--operator`` role of
``wfrun accounts create``. ``cli/accounts.py`` attaches these to its group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import click

from wfrun.cli.common import json_option, run_db, settings_of
from wfrun.cli.output import emit
from wfrun.clock import to_rfc3339
from wfrun.config import Settings
from wfrun.db.database import Database
from wfrun.services import console_auth

DEFAULT_INVITE_HOURS = int(console_auth.INVITE_TTL.total_seconds()) // 3600


@dataclass(frozen=True)
class InviteLink:
    account_id: str
    email: str
    link: str
    expires_at: datetime


async def invite_link(
    db: Database,
    settings: Settings,
    *,
    account_id: str,
    email: str,
    ttl: timedelta = console_auth.INVITE_TTL,
) -> InviteLink:
    """Invite ``email`` to sign in to ``account_id``'s console; the link is under
    ``public_base_url`` (else the server's host and port)."""
    made = await console_auth.invite(db, account_id=account_id, email=email, ttl=ttl)
    link = settings.public_origin + console_auth.invite_path(made.token)
    return InviteLink(account_id, made.email, link, made.expires_at)


async def make_operator(db: Database, account_id: str) -> None:
    await console_auth.set_role(db, account_id, "operator")


@click.command("invite")
@click.argument("account_id")
@click.option("--email", required=True, help="Who signs in with it (the console user's email).")
@click.option(
    "--hours",
    default=DEFAULT_INVITE_HOURS,
    show_default=True,
    type=click.IntRange(1, 24 * 30),
    help="How long the link works.",
)
@json_option
@click.pass_context
def invite_command(
    ctx: click.Context, account_id: str, email: str, hours: int, as_json: bool
) -> None:
    """Print a one-time link with which EMAIL sets a console password for ACCOUNT_ID."""

    async def work(db: Database) -> InviteLink:
        ttl = timedelta(hours=hours)
        return await invite_link(db, settings_of(ctx), account_id=account_id, email=email, ttl=ttl)

    made = run_db(ctx, work)
    data = {
        "account_id": made.account_id,
        "email": made.email,
        "link": made.link,
        "expires_at": to_rfc3339(made.expires_at),
    }
    emit(data, as_json=as_json, text=made.link)


@click.command("set-role")
@click.argument("account_id")
@click.argument("role", type=click.Choice(console_auth.ROLES))
@json_option
@click.pass_context
def set_role_command(ctx: click.Context, account_id: str, role: str, as_json: bool) -> None:
    """Make ACCOUNT_ID a customer or an operator (operators see the console's operator pages)."""

    async def work(db: Database) -> None:
        await console_auth.set_role(db, account_id, role)

    run_db(ctx, work)
    emit({"account_id": account_id, "role": role}, as_json=as_json, text=f"{account_id} {role}")


operator_option = click.option(
    "--operator", is_flag=True, help="Give the account the operator role (console operator pages)."
)
