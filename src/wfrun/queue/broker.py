"""A job queue on our own tables, in the same database as the business data.

Enqueue happens in the submit's statement (:func:`job_values`, ``queue.submission``). A claim
is ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING`` on PostgreSQL
(``id IN`` with ``LIMIT n`` for a batch), the same under SQLite's ``BEGIN IMMEDIATE``; it takes
a lease and bumps ``attempts``: a job whose lease lapsed is claimable again, the attempt
number fences what the new owner writes.

One order serves claims, :func:`queue_place` and the ETA: ``(fair_round, created_at, id)``
(:data:`QUEUE_ORDER`; the round is round-robin by account within the job's lane, see
``domain.lanes.fair_round``). Nothing moves a job within it: a deferral or retry keeps its
round and enqueue time. ``ix_jobs_lane (status, lane, fair_round, created_at)`` serves the
lane's round look-ups at enqueue and the place count; claims sort the due ``todo`` rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import BindParameter, Update, and_, exists, func, or_, select, update

from wfrun import ids
from wfrun.db.database import Connection
from wfrun.db.dialect import skip_locked
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import jobs, runs, workers
from wfrun.domain.lanes import fair_round
from wfrun.queue.notify import CHANNEL
from wfrun.queue.quotas import within_batch, within_running_cap


class JobStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    TRACKING = "tracking"
    """Its run waits on a provider task (e.g. Ark); no worker slot holds it. A tracker polls
    it when ``scheduled_at`` is due, pushing ``scheduled_at`` forward as its lease."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Job:
    """One row of ``jobs``: the dispatch of a run, claimed under a lease; ``attempts`` is the
    fencing token of the claim that holds it."""

    id: str
    kind: str
    run_id: str
    status: JobStatus
    attempts: int
    max_attempts: int
    scheduled_at: datetime
    lease_until: datetime | None
    worker_id: str | None
    last_error: str | None
    created_at: datetime
    """The enqueue time: the job's place in its round; nothing changes it."""
    updated_at: datetime
    lane: str
    """Engine kind + required labels (``domain.lanes.lane_key``)."""
    account_id: str
    fair_round: int
    start_by: datetime | None
    """The queue deadline: a run not started by then fails ``QUEUE_TIMEOUT``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", JobStatus(self.status))


DISPATCH_RUN = "run.dispatch"
OPEN_JOBS = (JobStatus.TODO, JobStatus.DOING, JobStatus.TRACKING)
QUEUE_ORDER = (jobs.c.fair_round, jobs.c.created_at, jobs.c.id)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new job queues: its lane, account and queue deadline."""

    lane: str
    account_id: str
    start_by: datetime | None


async def job_values(
    conn: Connection,
    *,
    run_id: str,
    kind: str,
    max_attempts: int,
    now: datetime,
    placement: Placement,
) -> dict[str, Any]:
    """A new job's row, its fair round read now; the submit inserts it together with the run's
    other rows (``queue.submission``)."""
    return {
        "id": ids.new_job_id(),
        "kind": kind,
        "run_id": run_id,
        "status": JobStatus.TODO,
        "attempts": 0,
        "max_attempts": max_attempts,
        "scheduled_at": now,
        "created_at": now,
        "updated_at": now,
        "lane": placement.lane,
        "account_id": placement.account_id,
        "fair_round": await _round_for(conn, placement),
        "start_by": placement.start_by,
    }


async def _round_for(conn: Connection, placement: Placement) -> int:
    """The round a new job joins (``domain.lanes.fair_round``), from the lane's jobs waiting
    or in service (``ix_jobs_lane``). Two concurrent submits of one account may read the same
    round: they then tie, served by enqueue time (fairness slips by one run, nothing else)."""
    lane = jobs.c.lane == placement.lane
    todo = jobs.c.status == JobStatus.TODO
    doing = jobs.c.status == JobStatus.DOING
    mine = and_(lane, or_(todo, doing), jobs.c.account_id == placement.account_id)
    query = select(
        select(func.max(jobs.c.fair_round)).where(lane, doing).scalar_subquery(),
        select(func.min(jobs.c.fair_round)).where(lane, todo).scalar_subquery(),
        select(func.max(jobs.c.fair_round)).where(mine).scalar_subquery(),
    )
    in_service, head, last = (await conn.execute(query)).one()
    return fair_round(in_service=in_service, lane_head=head, account_last=last)


def _claimable(now: datetime | BindParameter[datetime]) -> Any:
    return or_(
        and_(jobs.c.status == JobStatus.TODO, jobs.c.scheduled_at <= now),
        and_(jobs.c.status == JobStatus.DOING, jobs.c.lease_until < now),
    )


async def claim(
    conn: Connection,
    *,
    worker_id: str,
    lease: timedelta,
    now: datetime,
    full_lanes: Collection[str] = (),
    running_cap: int | None = None,
) -> Job | None:
    """Claim the first claimable job in queue order, or None. Jobs of ``full_lanes`` wait
    unless their run is placed on an instance (a re-dispatch goes back to it), as do those of
    accounts at their running-run cap (``quotas.within_running_cap``)."""
    query = claim_update(
        conn,
        worker_id=worker_id,
        until=now + lease,
        now=now,
        full_lanes=full_lanes,
        running_cap=running_cap,
    )
    result = await conn.execute(query.returning(*jobs.c))
    return record_or_none(Job, result.mappings().first())


def claim_update(
    conn: Connection,
    *,
    worker_id: str | BindParameter[str],
    until: datetime | BindParameter[datetime],
    now: datetime | BindParameter[datetime],
    full_lanes: Collection[str] = (),
    running_cap: int | None = None,
    limit: BindParameter[int] | None = None,
) -> Update:
    """The claim's ``UPDATE`` without ``RETURNING`` (its lease ends ``until``) of the first
    claimable job, or with ``limit`` of a batch: the first ``limit`` not locked by another
    claim, an account's waiting ones only while its cap has room (``quotas.within_batch``).
    ``queue.claim_start``'s statement starts with it (binding ``limit`` and the values)."""
    query = select(jobs.c.id).where(_claimable(now), within_running_cap(running_cap))
    if full_lanes:
        placed = exists().where(runs.c.id == jobs.c.run_id, runs.c.instance_id.is_not(None))
        query = query.where(or_(jobs.c.lane.not_in(list(full_lanes)), placed))
    locked = query.order_by(*QUEUE_ORDER).with_for_update(**skip_locked(conn))
    if limit is None:
        chosen: Any = jobs.c.id == locked.limit(1).scalar_subquery()
    else:
        batch = locked.add_columns(jobs.c.account_id, jobs.c.status, *QUEUE_ORDER[:2]).limit(limit)
        chosen = jobs.c.id.in_(within_batch(batch.subquery("candidates"), running_cap))
    values = {"status": JobStatus.DOING, "attempts": jobs.c.attempts + 1, "updated_at": now}
    return (
        update(jobs).where(chosen).values(values | {"lease_until": until, "worker_id": worker_id})
    )


async def finish(
    conn: Connection,
    *,
    job_id: str,
    attempt: int | None,
    status: JobStatus,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Close a job (fenced by attempt when given); False when the guard did not match."""
    query = update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(OPEN_JOBS))
    if attempt is not None:
        query = query.where(jobs.c.attempts == attempt)
    result = await conn.execute(
        query.values(status=status, updated_at=now, lease_until=None, last_error=error)
    )
    return result.rowcount == 1


async def reschedule(
    conn: Connection, *, job_id: str, attempt: int, at: datetime, error: str
) -> bool:
    """Give a job back to the queue for a later attempt (transient failure)."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.attempts == attempt, jobs.c.status == JobStatus.DOING)
        .values(status=JobStatus.TODO, scheduled_at=at, lease_until=None, last_error=error)
    )
    return result.rowcount == 1


async def defer(
    conn: Connection, *, job_id: str, attempt: int, at: datetime, error: str | None = None
) -> bool:
    """Hand a job back within the transaction that claimed it, without using up an attempt
    (nothing could run it yet, nothing was written under the attempt), due again at ``at``; it
    keeps its place in the queue order. Fenced by ``attempt``: False when another claim owns
    the job now. After the claim committed use :func:`hand_back`, which keeps the fencing
    token."""
    values: dict[str, Any] = {
        "status": JobStatus.TODO,
        "attempts": jobs.c.attempts - 1,
        "scheduled_at": at,
        "lease_until": None,
        "worker_id": None,
    }
    if error is not None:
        values["last_error"] = error
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.attempts == attempt, jobs.c.status == JobStatus.DOING)
        .values(**values)
    )
    return result.rowcount == 1


async def hand_back(
    conn: Connection,
    *,
    job_id: str,
    attempt: int,
    now: datetime,
    error: str,
    at: datetime | None = None,
) -> bool:
    """Give back a job a committed claim holds without using an attempt (a stopping worker's
    runs; a run waiting for its instance or a busy engine, due ``at``). ``attempts`` stays as
    the fencing token, ``max_attempts`` grows by one (:func:`defer` is for the claim's own
    transaction). False when this attempt no longer owns the job."""
    values: dict[str, Any] = {"status": JobStatus.TODO, "max_attempts": jobs.c.max_attempts + 1}
    values |= {"lease_until": None, "worker_id": None, "last_error": error, "updated_at": now}
    if at is not None:
        values["scheduled_at"] = at
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.attempts == attempt, jobs.c.status == JobStatus.DOING)
        .values(**values)
    )
    return result.rowcount == 1


async def park(conn: Connection, *, job_id: str, attempt: int, at: datetime, now: datetime) -> bool:
    """Hand a claimed job over to provider tracking (frees the worker slot)."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.attempts == attempt, jobs.c.status == JobStatus.DOING)
        .values(
            status=JobStatus.TRACKING,
            scheduled_at=at,
            lease_until=None,
            worker_id=None,
            updated_at=now,
        )
    )
    return result.rowcount == 1


async def claim_tracking(
    conn: Connection, *, limit: int, lease: timedelta, now: datetime
) -> list[Job]:
    """Take up to ``limit`` due tracking jobs under a lease (``lease_until``): a tracker that
    dies leaves them to the next one once it lapses, and nothing (not :func:`expedite`) lets a
    second tracker take a job while the first still holds it."""
    due = (
        select(jobs.c.id)
        .where(
            jobs.c.status == JobStatus.TRACKING,
            jobs.c.scheduled_at <= now,
            or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now),
        )
        .order_by(jobs.c.scheduled_at, jobs.c.id)
        .limit(limit)
        .with_for_update(**skip_locked(conn))
    )
    ids_ = list((await conn.execute(due)).scalars().all())
    if not ids_:
        return []
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id.in_(ids_), jobs.c.status == JobStatus.TRACKING)
        .values(lease_until=now + lease, updated_at=now)
        .returning(*jobs.c)
    )
    return records(Job, result.mappings())


async def track_again(conn: Connection, *, job_ids: Sequence[str], at: datetime) -> None:
    """Release tracking jobs' leases; check them again at ``at``."""
    if job_ids:
        await conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(job_ids), jobs.c.status == JobStatus.TRACKING)
            .values(scheduled_at=at, lease_until=None)
        )


async def expedite(conn: Connection, run_id: str, now: datetime) -> None:
    """A tracked run needs attention now (its user asked to cancel, Ark called back); a
    tracker holding it keeps it until it is done."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.run_id == run_id, jobs.c.status == JobStatus.TRACKING)
        .values(scheduled_at=now)
    )


async def tracking_count(conn: Connection) -> int:
    query = select(func.count()).where(jobs.c.status == JobStatus.TRACKING)
    return int((await conn.execute(query)).scalar_one())


async def lock_for_run(conn: Connection, run_id: str) -> None:
    """Take the row locks of the run's jobs: the first step of every path that changes a run
    (lock order job → run → freeze → account; see CONTRIBUTING). SQLite's write transaction
    already holds the database's one write lock, so there is nothing to take there."""
    if conn.dialect.name == "sqlite":
        return
    query = select(jobs.c.id).where(jobs.c.run_id == run_id).order_by(jobs.c.id)
    await conn.execute(query.with_for_update())


async def close_for_run(
    conn: Connection, run_id: str, *, status: JobStatus, now: datetime, error: str | None = None
) -> None:
    """Close every open job of a run that has ended."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.run_id == run_id, jobs.c.status.in_(OPEN_JOBS))
        .values(status=status, updated_at=now, lease_until=None, last_error=error)
    )


# ---- workers -----------------------------------------------------------------------------------


async def live_capacity(conn: Connection, *, since: datetime) -> int:
    """Total concurrency of workers that heartbeated after ``since``."""
    query = select(func.coalesce(func.sum(workers.c.concurrency), 0)).where(
        workers.c.heartbeat_at >= since
    )
    return int((await conn.execute(query)).scalar_one())


async def busy_count(conn: Connection, *, now: datetime) -> int:
    """Jobs being worked on under a live lease."""
    query = select(func.count()).where(jobs.c.status == JobStatus.DOING, jobs.c.lease_until >= now)
    return int((await conn.execute(query)).scalar_one())


async def wake_jobs(conn: Connection, run_ids: Sequence[str], now: datetime) -> int:
    """Make the waiting (``todo``) jobs of these runs claimable now, and wake idle workers on
    PostgreSQL (the requeue trigger fires on a status change only); the number woken."""
    if not run_ids:
        return 0
    result = await conn.execute(
        update(jobs)
        .where(
            jobs.c.run_id.in_(run_ids), jobs.c.status == JobStatus.TODO, jobs.c.scheduled_at > now
        )
        .values(scheduled_at=now)
    )
    if result.rowcount and conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(CHANNEL, "")))
    return int(result.rowcount)
