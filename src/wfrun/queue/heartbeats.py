"""Workers' rows and their heartbeat: one beat keeps every lease a worker holds.

A beat is one statement on PostgreSQL however many runs the worker has in flight (the
worker's ``heartbeat_at`` and its jobs' leases, with the runs' cancel flags returned); SQLite,
whose ``RETURNING`` names only the updated table and which has no data-modifying CTEs, needs
three. Callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update

from wfrun.db.database import Connection
from wfrun.db.schema import jobs, runs, workers
from wfrun.queue.broker import JobStatus


async def register_worker(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(workers), values)


async def beat(
    conn: Connection,
    *,
    worker_id: str,
    owned: Collection[tuple[str, int]],
    now: datetime,
    until: datetime,
) -> dict[str, bool]:
    """Record the worker alive at ``now`` and extend its jobs' leases, given as (job,
    attempt), to ``until``. Returns, for each run whose job this worker still owns, whether
    its cancellation was requested. On PostgreSQL the jobs are locked in id order first
    (lock order job → run)."""
    alive = update(workers).where(workers.c.id == worker_id).values(heartbeat_at=now)
    if not owned:
        await conn.execute(alive)
        return {}
    mine = select(jobs.c.id).where(
        tuple_(jobs.c.id, jobs.c.attempts).in_(list(owned)), jobs.c.status == JobStatus.DOING
    )
    if conn.dialect.name == "sqlite":
        await conn.execute(alive)
        extend = update(jobs).where(jobs.c.id.in_(mine)).values(lease_until=until)
        kept = list((await conn.execute(extend.returning(jobs.c.run_id))).scalars())
        flags = select(runs.c.id, runs.c.cancel_requested_at.is_not(None))
        result = await conn.execute(flags.where(runs.c.id.in_(kept)))
        return {run_id: bool(cancel) for run_id, cancel in result}
    mine = mine.order_by(jobs.c.id).with_for_update()
    extend = (
        update(jobs)
        .where(jobs.c.id.in_(mine), runs.c.id == jobs.c.run_id)
        .values(lease_until=until)
        .returning(runs.c.id, runs.c.cancel_requested_at.is_not(None))
        .add_cte(alive.cte("alive"))
    )
    return {run_id: bool(cancel) for run_id, cancel in await conn.execute(extend)}
