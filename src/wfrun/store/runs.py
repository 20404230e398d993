"""Runs, their events and holds. Callers own the transaction; nothing here commits.

Worker writes are *fenced*: they carry the attempt number and match only while the run is
``running`` under that attempt, so a stale worker's late writes change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, String, cast, func, insert, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun.domain.runs import FreezeStatus, RunStatus
from wfrun.records import Record
from wfrun.store.dialect import insert_ignoring_conflict
from wfrun.store.schema import UTCDateTime, holds, jobs, revisions, run_events, runs

_IDEMPOTENCY = ["account_id", "workflow_id", "idempotency_scope", "idempotency_key"]


async def insert_run_claiming_key(
    conn: AsyncConnection, values: dict[str, Any]
) -> RowMapping | None:
    """Insert the run unless its idempotency key is taken; the stored row, or None."""
    statement = insert_ignoring_conflict(conn, runs, _IDEMPOTENCY).returning(*runs.c)
    row: RowMapping | None = (await conn.execute(statement, values)).mappings().first()
    return row


async def find_by_idempotency(
    conn: AsyncConnection, *, account_id: str, workflow_id: str, key: str, scope: str = ""
) -> RowMapping | None:
    query = select(runs).where(
        runs.c.account_id == account_id,
        runs.c.workflow_id == workflow_id,
        runs.c.idempotency_scope == scope,
        runs.c.idempotency_key == key,
    )
    return (await conn.execute(query)).mappings().first()


async def find_run(
    conn: AsyncConnection, run_id: str, *, account_id: str | None = None
) -> RowMapping | None:
    query = select(runs).where(runs.c.id == run_id)
    if account_id is not None:
        query = query.where(runs.c.account_id == account_id)
    return (await conn.execute(query)).mappings().first()


async def list_runs(
    conn: AsyncConnection,
    *,
    account_id: str,
    workflow_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[RowMapping], int]:
    conditions = [runs.c.account_id == account_id, runs.c.family == "workflow"]
    if workflow_id:
        conditions.append(runs.c.workflow_id == workflow_id)
    if status:
        conditions.append(runs.c.status == status)
    total_query = select(func.count()).select_from(runs).where(*conditions)
    total = int((await conn.execute(total_query)).scalar_one())
    query = (
        select(runs)
        .where(*conditions)
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await conn.execute(query)).mappings().all(), total


async def move_status(
    conn: AsyncConnection,
    run_id: str,
    *,
    current: RunStatus,
    values: dict[str, Any],
    attempt: int | None = None,
) -> RowMapping | None:
    """Conditionally update a run that is still ``current`` (and at ``attempt`` when given).

    Returns the updated row, or None when the guard did not match (someone else moved it).
    """
    query = update(runs).where(runs.c.id == run_id, runs.c.status == current)
    if attempt is not None:
        query = query.where(runs.c.attempt == attempt)
    result = await conn.execute(query.values(**values).returning(*runs.c))
    row: RowMapping | None = result.mappings().first()
    return row


async def update_fenced(
    conn: AsyncConnection, run_id: str, attempt: int, values: dict[str, Any]
) -> bool:
    """Update a run still ``running`` under ``attempt``; False when fenced out."""
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.attempt == attempt, runs.c.status == RunStatus.RUNNING)
        .values(**values)
    )
    return result.rowcount == 1


async def find_runs(conn: AsyncConnection, run_ids: list[str]) -> dict[str, RowMapping]:
    rows = (await conn.execute(select(runs).where(runs.c.id.in_(run_ids)))).mappings().all()
    return {row["id"]: row for row in rows}


async def provider_task_ids_since(conn: AsyncConnection, since: datetime) -> set[str]:
    """Provider task ids recorded on runs created since ``since``."""
    query = select(runs.c.provider_task_id).where(
        runs.c.provider_task_id.is_not(None), runs.c.created_at >= since
    )
    return {str(t) for t in (await conn.execute(query)).scalars().all()}


async def record_progress(
    conn: AsyncConnection, run_id: str, attempt: int, values: dict[str, Any]
) -> RowMapping | None:
    """Fenced progress write; returns ``cancel_requested_at`` (or None when fenced out)."""
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.attempt == attempt, runs.c.status == RunStatus.RUNNING)
        .values(**values)
        .returning(runs.c.cancel_requested_at)
    )
    row: RowMapping | None = result.mappings().first()
    return row


async def request_cancel(conn: AsyncConnection, run_id: str, now: datetime) -> bool:
    result = await conn.execute(
        update(runs)
        .where(
            runs.c.id == run_id,
            runs.c.status == RunStatus.RUNNING,
            runs.c.cancel_requested_at.is_(None),
        )
        .values(cancel_requested_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def cancel_flags(conn: AsyncConnection, run_ids: list[str]) -> set[str]:
    """The subset of ``run_ids`` whose cancellation was requested."""
    if not run_ids:
        return set()
    query = select(runs.c.id).where(runs.c.id.in_(run_ids), runs.c.cancel_requested_at.is_not(None))
    return set((await conn.execute(query)).scalars().all())


async def add_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(run_events), rows)


async def list_events(conn: AsyncConnection, run_id: str, *, limit: int) -> Sequence[RowMapping]:
    query = (
        select(run_events)
        .where(run_events.c.run_id == run_id)
        .order_by(run_events.c.id.desc())
        .limit(limit)
    )
    rows = (await conn.execute(query)).mappings().all()
    return list(reversed(rows))


async def recent_average_ms(conn: AsyncConnection, revision_id: str, *, sample: int) -> int | None:
    """Mean execution time of the revision's last ``sample`` successful runs."""
    recent = (
        select(runs.c.execution_ms)
        .where(runs.c.revision_id == revision_id, runs.c.status == RunStatus.SUCCEEDED)
        .order_by(runs.c.terminal_at.desc())
        .limit(sample)
        .subquery()
    )
    value = (await conn.execute(select(func.avg(recent.c.execution_ms)))).scalar_one()
    return None if value is None else int(value)


# ---- holds -------------------------------------------------------------------------------------


async def insert_hold(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(holds), values)


async def resolve_hold(
    conn: AsyncConnection, run_id: str, status: FreezeStatus, now: datetime
) -> RowMapping | None:
    """Resolve the run's hold exactly once: returns it when this call resolved it, else None."""
    result = await conn.execute(
        update(holds)
        .where(holds.c.run_id == run_id, holds.c.status == FreezeStatus.FROZEN)
        .values(status=status, resolved_at=now)
        .returning(holds.c.id, holds.c.account_id, holds.c.amount)
    )
    return result.mappings().first()


async def queue_position(conn: AsyncConnection, run: Record) -> int | None:
    """1-based place of a queued run among waiting runs of the same lane: the same engine kind
    and required labels (runs that compete for the same workers or instances), by submit time.
    None when the run has no waiting job."""
    waiting = select(jobs.c.run_id).where(jobs.c.status == "todo")
    if (await conn.execute(waiting.where(jobs.c.run_id == run["id"]))).first() is None:
        return None
    mine = revisions.alias("mine")
    lane = (
        select(mine.c.engine_kind, cast(mine.c.required_labels, String).label("labels"))
        .where(mine.c.id == run["revision_id"])
        .subquery()
    )
    ahead = (
        select(func.count())
        .select_from(runs.join(revisions, revisions.c.id == runs.c.revision_id))
        .where(
            runs.c.id.in_(waiting),
            tuple_(runs.c.created_at, runs.c.id)
            < tuple_(literal(run["created_at"], UTCDateTime()), literal(run["id"])),
            revisions.c.engine_kind == select(lane.c.engine_kind).scalar_subquery(),
            func.coalesce(cast(revisions.c.required_labels, String), "")
            == func.coalesce(select(lane.c.labels).scalar_subquery(), ""),
        )
    )
    return int((await conn.execute(ahead)).scalar_one()) + 1
