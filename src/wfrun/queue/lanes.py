"""Reading the queue by lane: a run's place, the lanes with waiting work, the runs past their
queue deadline. The order is the claims' (:data:`broker.QUEUE_ORDER`), so a place shown is
the place a claim serves. Callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Select, exists, func, literal, select, tuple_

from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none
from wfrun.db.schema import UTCDateTime, jobs, run_events, runs
from wfrun.domain.runs import RunStatus
from wfrun.queue.broker import QUEUE_ORDER, Job, JobStatus

WAITING_EVENT = "waiting"
"""The run-log line saying why a run cannot start (written once per run)."""


@dataclass(frozen=True, slots=True)
class QueuePlace:
    """A waiting run's 1-based place in its lane."""

    lane: str
    place: int


async def queue_place(conn: Connection, run_id: str) -> QueuePlace | None:
    """The run's place among its lane's waiting jobs in queue order; None when it has no
    waiting job."""
    mine = (
        await conn.execute(
            select(jobs.c.lane, *QUEUE_ORDER).where(
                jobs.c.run_id == run_id, jobs.c.status == JobStatus.TODO
            )
        )
    ).first()
    if mine is None:
        return None
    lane, round_, created_at, job_id = mine
    at = literal(created_at, UTCDateTime())
    ahead = ahead_of(literal(lane), literal(round_), at, literal(job_id))
    return QueuePlace(lane, int((await conn.execute(ahead)).scalar_one()) + 1)


def ahead_of(lane: Any, round_: Any, created_at: Any, job_id: Any) -> Select[int]:
    """The number of ``lane``'s waiting jobs ahead of the job at ``(round_, created_at,
    job_id)`` in queue order (SQL expressions: bound values, or a row's columns)."""
    return select(func.count()).where(
        jobs.c.status == JobStatus.TODO,
        jobs.c.lane == lane,
        tuple_(*QUEUE_ORDER) < tuple_(round_, created_at, job_id),
    )


async def waiting_lanes(conn: Connection, now: datetime) -> set[str]:
    """The lanes that have a job due (waiting, not held back for a retry)."""
    query = (
        select(jobs.c.lane)
        .where(jobs.c.status == JobStatus.TODO, jobs.c.scheduled_at <= now)
        .distinct()
    )
    return set((await conn.execute(query)).scalars())


async def overdue_runs(conn: Connection, now: datetime, *, limit: int) -> list[str]:
    """Runs still queued whose queue deadline has passed, oldest deadline first."""
    query = (
        select(jobs.c.run_id)
        .join(runs, runs.c.id == jobs.c.run_id)
        .where(
            jobs.c.status == JobStatus.TODO,
            jobs.c.start_by <= now,
            runs.c.status == RunStatus.QUEUED,
        )
        .order_by(jobs.c.start_by)
        .limit(limit)
    )
    return list((await conn.execute(query)).scalars())


async def unexplained_runs(conn: Connection, lane: str, *, limit: int) -> list[str]:
    """Queued runs of ``lane`` whose log does not yet say why they wait."""
    explained = exists().where(
        run_events.c.run_id == jobs.c.run_id, run_events.c.event_type == WAITING_EVENT
    )
    query = (
        select(jobs.c.run_id)
        .join(runs, runs.c.id == jobs.c.run_id)
        .where(
            jobs.c.status == JobStatus.TODO,
            jobs.c.lane == lane,
            runs.c.status == RunStatus.QUEUED,
            ~explained,
        )
        .order_by(*QUEUE_ORDER)
        .limit(limit)
    )
    return list((await conn.execute(query)).scalars())


async def busy_since(conn: Connection, now: datetime) -> list[datetime]:
    """When the runs holding a worker slot (a job under a live lease) started."""
    return [t for t in (await conn.execute(busy_since_query(now))).scalars() if t is not None]


def busy_since_query(now: datetime | BindParameter[datetime]) -> Select[datetime | None]:
    """The start times :func:`busy_since` reads (``now`` bound, or a bound parameter)."""
    return (
        select(runs.c.started_at)
        .join(jobs, jobs.c.run_id == runs.c.id)
        .where(
            jobs.c.status == JobStatus.DOING,
            jobs.c.lease_until >= now,
            runs.c.started_at.is_not(None),
        )
    )


async def waiting_job(conn: Connection, run_id: str) -> Job | None:
    """The run's waiting (``todo``) job, if any."""
    query = select(jobs).where(jobs.c.run_id == run_id, jobs.c.status == JobStatus.TODO)
    return record_or_none(Job, (await conn.execute(query)).mappings().first())


async def explained(conn: Connection, run_id: str) -> bool:
    """Whether the run's log already says why it waits."""
    query = select(run_events.c.id).where(
        run_events.c.run_id == run_id, run_events.c.event_type == WAITING_EVENT
    )
    return (await conn.execute(query.limit(1))).first() is not None
