"""What only the operator does: runs of every account, refunds, balance corrections and
retiring workflows. Callers own the transaction; nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, cast, func, insert, select, update

from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none, records
from wfrun.db.runs import Run
from wfrun.db.schema import accounts, refunds, runs, workflows
from wfrun.db.workflows import Workflow


@dataclass(frozen=True, slots=True)
class RunRefund:
    """A ``refunds`` row: part or all of a run's final amount given back, by one ledger entry."""

    id: str
    run_id: str
    account_id: str
    entry_id: str
    amount: int
    memo: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs :func:`list_runs` returns (every field optional)."""

    account_id: str | None = None
    workflow_id: str | None = None
    status: str | None = None


async def list_runs(conn: Connection, where: RunFilter, *, limit: int) -> list[Run]:
    """Runs of every account and family, newest first."""
    query = select(runs)
    if where.account_id:
        query = query.where(runs.c.account_id == where.account_id)
    if where.workflow_id:
        query = query.where(runs.c.workflow_id == where.workflow_id)
    if where.status:
        query = query.where(runs.c.status == where.status)
    query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
    return records(Run, (await conn.execute(query)).mappings())


async def lock_run(conn: Connection, run_id: str) -> Run | None:
    """The run, row-locked on PostgreSQL (SQLite's write transaction already serialises)."""
    query = select(runs).where(runs.c.id == run_id)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    return record_or_none(Run, (await conn.execute(query)).mappings().first())


# ---- refunds -----------------------------------------------------------------------------------


async def insert_refund(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(refunds), values)


async def refunds_of_run(conn: Connection, run_id: str) -> list[RunRefund]:
    query = select(refunds).where(refunds.c.run_id == run_id).order_by(refunds.c.created_at)
    return records(RunRefund, (await conn.execute(query)).mappings())


async def refunded_totals(conn: Connection, run_ids: list[str]) -> dict[str, int]:
    """How much of each run was refunded (runs without refunds are absent)."""
    if not run_ids:
        return {}
    total = cast(func.sum(refunds.c.amount), BigInteger)  # numeric on PostgreSQL otherwise
    query = (
        select(refunds.c.run_id, total.label("total"))
        .where(refunds.c.run_id.in_(run_ids))
        .group_by(refunds.c.run_id)
    )
    return {row.run_id: int(row.total) for row in (await conn.execute(query)).all()}


# ---- balance corrections ---------------------------------------------------------------------

_ADJUST = (
    update(accounts)
    .where(accounts.c.id == bindparam("account"))
    .values(available=accounts.c.available + bindparam("delta"))
)


async def try_adjust_available(
    conn: Connection, account_id: str, delta: int, *, floor: int | None
) -> bool:
    """Add ``delta`` to available in one conditional UPDATE, iff the result stays at or above
    ``floor`` (None: no floor). False when the floor refused it."""
    statement = _ADJUST
    if floor is not None:
        statement = statement.where(accounts.c.available + bindparam("delta") >= floor)
    result = await conn.execute(statement, {"account": account_id, "delta": delta})
    return result.rowcount == 1


# ---- workflows ---------------------------------------------------------------------------------


async def retire_workflow(
    conn: Connection, workflow_id: str, *, now: datetime, archive: bool
) -> Workflow | None:
    """Unpublish the workflow (and with ``archive`` mark it archived, once); None if absent."""
    by_id = workflows.c.id == workflow_id
    await conn.execute(
        update(workflows).where(by_id).values(published_revision_id=None, updated_at=now)
    )
    if archive:
        not_yet = workflows.c.archived_at.is_(None)
        await conn.execute(update(workflows).where(by_id, not_yet).values(archived_at=now))
    query = select(workflows).where(by_id)
    return record_or_none(Workflow, (await conn.execute(query)).mappings().first())
