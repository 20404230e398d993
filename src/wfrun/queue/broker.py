"""A job queue on our own tables, in the same database as the business data.

Enqueue happens inside the caller's transaction (atomic with the run). A claim is one
statement: ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING`` on
PostgreSQL; the same under SQLite's single-writer ``BEGIN IMMEDIATE``. A claim takes a lease
and bumps ``attempts``; a job whose lease lapsed (its worker died) is claimable again, and the
attempt number is the fencing token for everything the new owner writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun import ids
from wfrun.store.dialect import skip_locked
from wfrun.store.schema import jobs, workers


class JobStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


DISPATCH_RUN = "run.dispatch"


async def enqueue(
    conn: AsyncConnection, *, run_id: str, kind: str, max_attempts: int, now: datetime
) -> str:
    job_id = ids.new_job_id()
    await conn.execute(
        insert(jobs),
        {
            "id": job_id,
            "kind": kind,
            "run_id": run_id,
            "status": JobStatus.TODO,
            "attempts": 0,
            "max_attempts": max_attempts,
            "scheduled_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    return job_id


def _claimable(now: datetime) -> Any:
    return or_(
        and_(jobs.c.status == JobStatus.TODO, jobs.c.scheduled_at <= now),
        and_(jobs.c.status == JobStatus.DOING, jobs.c.lease_until < now),
    )


async def claim(
    conn: AsyncConnection, *, worker_id: str, lease: timedelta, now: datetime
) -> RowMapping | None:
    """Claim the oldest claimable job for ``worker_id``, or None when there is none."""
    next_id = (
        select(jobs.c.id)
        .where(_claimable(now))
        .order_by(jobs.c.scheduled_at, jobs.c.id)
        .limit(1)
        .with_for_update(**skip_locked(conn))
        .scalar_subquery()
    )
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == next_id)
        .values(
            status=JobStatus.DOING,
            attempts=jobs.c.attempts + 1,
            lease_until=now + lease,
            worker_id=worker_id,
            updated_at=now,
        )
        .returning(*jobs.c)
    )
    return result.mappings().first()


async def extend_lease(
    conn: AsyncConnection, *, job_id: str, attempt: int, until: datetime
) -> bool:
    """Heartbeat one job; False when this attempt no longer owns it."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.attempts == attempt, jobs.c.status == JobStatus.DOING)
        .values(lease_until=until)
    )
    return result.rowcount == 1


async def finish(
    conn: AsyncConnection,
    *,
    job_id: str,
    attempt: int | None,
    status: JobStatus,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Close a job (fenced by attempt when given); False when the guard did not match."""
    query = update(jobs).where(
        jobs.c.id == job_id, jobs.c.status.in_([JobStatus.TODO, JobStatus.DOING])
    )
    if attempt is not None:
        query = query.where(jobs.c.attempts == attempt)
    result = await conn.execute(
        query.values(status=status, updated_at=now, lease_until=None, last_error=error)
    )
    return result.rowcount == 1


async def reschedule(
    conn: AsyncConnection, *, job_id: str, attempt: int, at: datetime, error: str
) -> bool:
    """Give a job back to the queue for a later attempt (transient failure)."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.attempts == attempt, jobs.c.status == JobStatus.DOING)
        .values(status=JobStatus.TODO, scheduled_at=at, lease_until=None, last_error=error)
    )
    return result.rowcount == 1


async def defer(conn: AsyncConnection, *, job_id: str, at: datetime) -> None:
    """Hand a just-claimed job back without using up an attempt (nothing could run it yet)."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == JobStatus.DOING)
        .values(
            status=JobStatus.TODO,
            attempts=jobs.c.attempts - 1,
            scheduled_at=at,
            lease_until=None,
            worker_id=None,
        )
    )


async def cancel_for_run(conn: AsyncConnection, run_id: str, now: datetime) -> None:
    await conn.execute(
        update(jobs)
        .where(jobs.c.run_id == run_id, jobs.c.status.in_([JobStatus.TODO, JobStatus.DOING]))
        .values(status=JobStatus.CANCELLED, updated_at=now, lease_until=None)
    )


async def jobs_for_run(conn: AsyncConnection, run_id: str) -> Sequence[RowMapping]:
    query = select(jobs).where(jobs.c.run_id == run_id).order_by(jobs.c.created_at)
    return (await conn.execute(query)).mappings().all()


# ---- workers -----------------------------------------------------------------------------------


async def register_worker(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(workers), values)


async def worker_heartbeat(conn: AsyncConnection, worker_id: str, now: datetime) -> None:
    await conn.execute(update(workers).where(workers.c.id == worker_id).values(heartbeat_at=now))


async def live_capacity(conn: AsyncConnection, *, since: datetime) -> int:
    """Total concurrency of workers that heartbeated after ``since``."""
    query = select(func.coalesce(func.sum(workers.c.concurrency), 0)).where(
        workers.c.heartbeat_at >= since
    )
    return int((await conn.execute(query)).scalar_one())


async def busy_count(conn: AsyncConnection, *, now: datetime) -> int:
    """Jobs being worked on under a live lease."""
    query = select(func.count()).where(jobs.c.status == JobStatus.DOING, jobs.c.lease_until >= now)
    return int((await conn.execute(query)).scalar_one())
