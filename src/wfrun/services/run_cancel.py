"""Cancelling a run from the API side (moved out of ``services.runs``, which re-exports it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wfrun.clock import utcnow
from wfrun.db import runs as runs_db
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run
from wfrun.domain.failures import cancelled
from wfrun.domain.pricing import release
from wfrun.domain.runs import RunStatus
from wfrun.queue import broker
from wfrun.services.accounts import Principal
from wfrun.services.run_endings import Ending, end_run
from wfrun.services.run_log import log_event
from wfrun.services.run_views import fetch_run


@dataclass(frozen=True)
class CancelResult:
    run: Run
    outcome: str
    """``cancelled`` (was queued, released now), ``cancel_requested`` (running; stops at the
    next node boundary), ``already_cancelled``, ``already_requested`` or ``already_finished``."""


async def cancel_run(
    db: Database, principal: Principal, run_id: str, *, family: str = "workflow"
) -> CancelResult:
    """Cancel the caller's run. Its jobs are locked before the run is read (lock order
    job → run → freeze → account), so the outcome is decided on the run as it really is: a
    worker that holds the run finishes first, or waits for this cancel."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await broker.lock_for_run(conn, run_id)
        run = await fetch_run(conn, principal, run_id, family=family)
        if run.status is RunStatus.QUEUED:
            ended = await end_run(conn, run, _cancelled_queued(run), now=now)
            assert ended is not None, "the run's jobs are locked: nothing else moved it"
            return CancelResult(ended, "cancelled")
        if run.status is RunStatus.RUNNING:
            return await _request_cancel(conn, run, now)
    outcome = "already_cancelled" if run.status is RunStatus.CANCELLED else "already_finished"
    return CancelResult(run, outcome)


async def _request_cancel(conn: Connection, run: Run, now: datetime) -> CancelResult:
    if run.cancel_requested_at is not None:
        return CancelResult(run, "already_requested")
    await runs_db.request_cancel(conn, run.id, now)
    await log_event(conn, run, now, "cancel_requested", "cancellation requested")
    await broker.expedite(conn, run.id, now)  # a parked provider run: act now
    await broker.wake_jobs(conn, [run.id], now)  # one waiting for a retry or its instance
    requested = await runs_db.find_run(conn, run.id)
    assert requested is not None
    return CancelResult(requested, "cancel_requested")


def _cancelled_queued(run: Run) -> Ending:
    return Ending(
        RunStatus.CANCELLED,
        release(run.quote_amount),
        "cancelled while queued; freeze released",
        cancelled("cancelled before it started; the whole freeze was released"),
    )
