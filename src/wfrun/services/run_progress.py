"""A claimed run's progress while it executes: node boundaries, transient retries, waits for
engine capacity. Each is one short fenced transaction between engine calls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import runs as runs_db
from wfrun.db.database import Database
from wfrun.queue import broker
from wfrun.services.claims import CancelRequested, Claim, Fenced
from wfrun.services.run_log import log_event


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
    """Record progress at a node boundary.

    Raises:
        Fenced: this attempt no longer owns the run.
        CancelRequested: the user asked to cancel.
    """
    now = utcnow()
    async with db.transaction(write=True) as conn:
        progressed = await runs_db.record_progress(
            conn,
            claim.run.id,
            claim.attempt,
            {"progress_percent": percent, "progress_snapshot": snapshot, "updated_at": now},
        )
        if progressed is None:
            raise Fenced(f"attempt {claim.attempt} of {claim.run.id} was superseded")
        await log_event(
            conn,
            claim.run,
            now,
            event_type,
            message,
            node_id=node_id,
            percent=percent,
            attempt=claim.attempt,
        )
    if progressed.cancel_requested:
        raise CancelRequested()


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
    return done


async def wait_for_engine(db: Database, claim: Claim, *, delay: timedelta, error: str) -> bool:
    """The engine had no capacity: hand the job back for later without using an attempt,
    unless the run has already waited past its time limit (then False: fail it)."""
    now = utcnow()
    started = claim.run.started_at or now
    if now + delay - started > timedelta(seconds=claim.spec.timeout_seconds):
        return False
    async with db.transaction(write=True) as conn:
        deferred = await broker.defer(
            conn,
            job_id=claim.job_id,
            attempt=claim.attempt,
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
    return True
