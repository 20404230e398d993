"""Queue deadlines and saying why a run waits.

A run that has not started by its job's ``start_by`` (``worker.max_queue_seconds`` after its
submit, or its package's lower ``max_queue_seconds``) fails ``QUEUE_TIMEOUT`` with its whole
freeze released. The claim path ends such a run when it reaches it; :func:`expire_overdue`
(a worker's periodic sweep) ends the rest, above all runs in a lane with no capacity at all,
which no claim ever reaches. Both end runs only through ``end_run``, after locking the run's
job (lock order job → run → freeze → account).

:func:`explain_waits` writes, once per run, the line of a queued run's log saying why nothing
can start it (no instance registered, none healthy), so a stranded run is visible in its log,
not only in ``queue_info.reason``.
"""

from __future__ import annotations

from datetime import datetime

from wfrun.db import instances as instances_db
from wfrun.db import runs as runs_db
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run
from wfrun.domain.failures import Failure, FailureCode
from wfrun.domain.lanes import parse_lane
from wfrun.domain.pricing import release
from wfrun.domain.runs import RunStatus
from wfrun.domain.scheduling import INSTANCE_KINDS
from wfrun.domain.waits import no_capacity_reason
from wfrun.queue import broker
from wfrun.queue import lanes as queue_lanes
from wfrun.services.lanes import instance_capacity
from wfrun.services.run_endings import Ending, end_run
from wfrun.services.run_log import log_event

BATCH = 100


def timed_out(run: Run, start_by: datetime, why: str | None) -> Ending:
    """The ending of a run that did not start by ``start_by``."""
    waited = f"{(start_by - run.created_at).total_seconds():g}"
    because = f" ({why})" if why else ""
    return Ending(
        RunStatus.FAILED,
        release(run.quote_amount),
        f"QUEUE_TIMEOUT: not started within {waited} s{because}; freeze released",
        Failure(
            FailureCode.QUEUE_TIMEOUT,
            f"not started within its queue deadline of {waited} s{because}; "
            "the whole freeze was released",
        ),
    )


async def blocked_reasons(conn: Connection, now: datetime) -> dict[str, str]:
    """Instance lanes with waiting work that nothing can serve at all, with the reason."""
    lanes = [
        lane
        for lane in await queue_lanes.waiting_lanes(conn, now)
        if parse_lane(lane)[0] in INSTANCE_KINDS
    ]
    if not lanes:
        return {}
    instances = await instances_db.list_instances(conn)
    reasons = {lane: no_capacity_reason(lane, instance_capacity(instances, lane)) for lane in lanes}
    return {lane: why for lane, why in reasons.items() if why is not None}


async def expire_overdue(db: Database, now: datetime) -> int:
    """End the queued runs past their queue deadline; how many were ended."""
    async with db.transaction() as conn:
        overdue = await queue_lanes.overdue_runs(conn, now, limit=BATCH)
        reasons = await blocked_reasons(conn, now) if overdue else {}
    ended = 0
    for run_id in overdue:
        async with db.transaction(write=True) as conn:
            ended += await _expire(conn, run_id, reasons, now)
    return ended


async def _expire(conn: Connection, run_id: str, reasons: dict[str, str], now: datetime) -> int:
    await broker.lock_for_run(conn, run_id)
    run = await runs_db.find_run(conn, run_id)
    job = await queue_lanes.waiting_job(conn, run_id)
    if run is None or run.status is not RunStatus.QUEUED or job is None:
        return 0  # started or ended meanwhile
    if job.start_by is None or job.start_by > now:
        return 0
    ended = await end_run(conn, run, timed_out(run, job.start_by, reasons.get(job.lane)), now=now)
    return 0 if ended is None else 1


async def explain_waits(db: Database, now: datetime) -> int:
    """Log, once per queued run, why nothing can start it; how many lines were written."""
    async with db.transaction() as conn:
        reasons = await blocked_reasons(conn, now)
        pending = {
            lane: await queue_lanes.unexplained_runs(conn, lane, limit=BATCH) for lane in reasons
        }
    written = 0
    for lane, run_ids in pending.items():
        for run_id in run_ids:
            async with db.transaction(write=True) as conn:
                written += await _explain(conn, run_id, reasons[lane], now)
    return written


async def _explain(conn: Connection, run_id: str, why: str, now: datetime) -> int:
    await broker.lock_for_run(conn, run_id)  # two sweeps write the line once
    run = await runs_db.find_run(conn, run_id)
    if run is None or run.status is not RunStatus.QUEUED:
        return 0
    if await queue_lanes.explained(conn, run_id):
        return 0
    await log_event(conn, run, now, queue_lanes.WAITING_EVENT, f"waiting: {why}", level="warning")
    return 1
