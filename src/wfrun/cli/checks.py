"""``wfrun db``, ``wfrun ledger`` and ``wfrun seedance``: the schema and health checks."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from wfrun.cli.common import json_option, run_async, run_db
from wfrun.cli.output import emit
from wfrun.db.database import Database

if TYPE_CHECKING:
    from wfrun.runtime import Runtime
    from wfrun.services.seedance_check import Check

# ---- db ----------------------------------------------------------------------------------------


@click.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@json_option
@click.pass_context
def db_upgrade(ctx: click.Context, as_json: bool) -> None:
    """Apply all migrations (the one admin command that migrates; serve and worker do too)."""
    from wfrun.db.migrate import current_revision, head_revision, upgrade

    async def work(database: Database) -> str | None:
        await upgrade(database)
        return await current_revision(database)

    revision = run_db(ctx, work, current=False)
    data = {"revision": revision, "head": head_revision()}
    emit(data, as_json=as_json, text=f"database at revision {revision} (head {data['head']})")


# ---- ledger ------------------------------------------------------------------------------------


@click.group("ledger")
def ledger_group() -> None:
    """Books."""


@ledger_group.command("check")
@json_option
@click.pass_context
def ledger_check(ctx: click.Context, as_json: bool) -> None:
    """Verify the ledger invariants; exits 1 and lists problems if any fail."""
    from wfrun.db.audit import ledger_problems

    async def work(database: Database) -> list[str]:
        async with database.transaction() as conn:
            return await ledger_problems(conn)

    problems = run_db(ctx, work)
    summary = "ledger balances" if not problems else f"{len(problems)} problem(s)"
    text = "\n".join([*problems, summary])
    emit({"ok": not problems, "problems": problems}, as_json=as_json, text=text)
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
    from wfrun.services.seedance_check import check_seedance

    async def work(rt: Runtime) -> list[Check]:
        return await check_seedance(rt.seedance)

    checks = run_async(ctx, work)
    text = "\n".join(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in checks)
    emit([asdict(c) for c in checks], as_json=as_json, text=text)
    sys.exit(0 if all(c.ok for c in checks) else 1)
