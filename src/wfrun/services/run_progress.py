"""A claimed run's progress while it executes: node boundaries, transient retries, waits for
engine capacity. Each is one short fenced transaction between engine calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import progress as progress_db
from wfrun.db.database import Database
from wfrun.db.stream import note_change
from wfrun.queue import broker
from wfrun.services import cost_stops, ops_log
from wfrun.services.claims import CancelRequested, Claim, Fenced
from wfrun.services.run_log import log_event


@dataclass(frozen=True)
class ProgressLine:
    """One node-boundary line for the run log, stamped when the engine reported it."""

    at: datetime
    event_type: str
    node_id: str
    message: str
    percent: int


async def record_node(
    db: Database,
    claim: Claim,
    *,
    event_type: str,
    node_id: str,
    message: str,
    percent: int,
    snapshot: dict[str, Any],
) -> None:
    """Record progress at a node boundary (one line; see :func:`record_progress`)."""
    line = ProgressLine(utcnow(), event_type, node_id, message, percent)
    await record_progress(db, claim, lines=(line,), percent=percent, snapshot=snapshot)


def _event_row(claim: Claim, line: ProgressLine) -> dict[str, Any]:
    return {
        "run_id": claim.run.id,
        "attempt": claim.attempt,
        "at": line.at,
        "event_type": line.event_type,
        "level": "info",
        "message": line.message,
        "node_id": line.node_id,
        "progress_percent": line.percent,
    }


async def record_progress(
    db: Database,
    claim: Claim,
    *,
    lines: Sequence[ProgressLine],
    percent: int,
    snapshot: dict[str, Any],
) -> None:
    """Record the run's progress and the log lines gathered since the last write, in one
    transaction of one statement on PostgreSQL (``db.progress.record_progress``; workers batch
    them: each transaction costs round trips, issues 11 and 17).

    Raises:
        Fenced: this attempt no longer owns the run.
        CancelRequested: the user asked to cancel (or ``cost_stops.CostLimitReached``).
    """
    now = utcnow()
    run = claim.run
    events = [_event_row(claim, line) for line in lines]
    values = {"progress_percent": percent, "progress_snapshot": snapshot, "updated_at": now}
    async with db.transaction(write=True) as conn:
        progressed = await progress_db.record_progress(conn, run.id, claim.attempt, values, events)
        if progressed is None:
            raise Fenced(f"attempt {claim.attempt} of {run.id} was superseded")
        stop = await cost_stops.check(conn, claim, now)
        if events:
            note_change(conn, run.account_id)  # as ``run_log.log_event`` does
    if progressed.cancel_requested or stop is not None:  # a cost stop is a cancel too
        raise stop or CancelRequested()


async def retry_later(db: Database, claim: Claim, *, delay: timedelta, error: str) -> bool:
    """Give the job back for another attempt after ``delay`` (transient engine failure)."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        done = await broker.reschedule(
            conn, job_id=claim.job_id, attempt=claim.attempt, at=now + delay, error=error
        )
        if done:
            await log_event(
                conn,
                claim.run,
                now,
                "retry",
                f"transient failure, retrying: {error}",
                level="warning",
                attempt=claim.attempt,
            )
    if done:
        seconds = delay.total_seconds()
        ops_log.retry_scheduled(
            claim.run, attempt=claim.attempt, delay_seconds=seconds, error=error
        )
    return done


async def wait_for_engine(db: Database, claim: Claim, *, delay: timedelta, error: str) -> bool:
    """The engine had no capacity: hand the job back for later without using an attempt,
    unless the run has already waited past its time limit (then False: fail it)."""
    now = utcnow()
    started = claim.run.started_at or now
    if now + delay - started > timedelta(seconds=claim.spec.timeout_seconds):
        return False
    async with db.transaction(write=True) as conn:
        deferred = await broker.hand_back(
            conn,
            job_id=claim.job_id,
            attempt=claim.attempt,
            now=now,
            at=now + delay,
            error=f"engine busy: {error}",
        )
        if not deferred:  # another claim owns the job now: nothing to record
            return True
        await log_event(
            conn,
            claim.run,
            now,
            "waiting",
            f"engine busy ({error}); trying again in {delay.total_seconds():g} s",
            level="warning",
            attempt=claim.attempt,
        )
    why = f"engine busy: {error}"
    ops_log.deferred(claim.run, attempt=claim.attempt, delay_seconds=delay.total_seconds(), why=why)
    return True
