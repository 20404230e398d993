"""The start of a claimed run on the general claim path (``services.claims``): from the queue
(→ ``running``, its change published), or again after a retry or a lapsed lease (a
re-dispatch, still ``running``). On PostgreSQL the run's move, its log line and its outbox row
are one statement (``db.run_start``: one round trip instead of three on a ComfyUI run's way to
its instance, issue 11); on SQLite one statement each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wfrun.db import run_start
from wfrun.db import runs as runs_db
from wfrun.db.database import Connection
from wfrun.db.runs import Run
from wfrun.db.stream import note_change
from wfrun.domain.runs import RunStatus, change_events, transition
from wfrun.queue.broker import Job
from wfrun.services.run_changes import announce_change, publish_change
from wfrun.services.run_log import log_event

STARTED_EVENTS = change_events(RunStatus.RUNNING)
"""The outbox event of a start, by run family (``run.started`` …)."""


async def start(
    conn: Connection,
    job: Job,
    run: Run,
    now: datetime,
    placement: tuple[str, str] | None,
) -> Run | None:
    """Start ``run`` under ``job``'s attempt, on ``placement`` (instance id, engine prompt
    id) when it runs on an instance; None when it was not startable or moved meanwhile."""
    attempt = job.attempts
    values: dict[str, Any] = {"attempt": attempt, "updated_at": now, "progress_percent": 0}
    if placement is not None:
        values |= {"instance_id": placement[0], "engine_prompt_id": placement[1]}
    if run.status is RunStatus.QUEUED:
        values |= {"status": transition(run.status, RunStatus.RUNNING), "started_at": now}
        message = f"started (attempt {attempt})"
    elif run.status is RunStatus.RUNNING and job.last_error:
        message = f"dispatching again (attempt {attempt}) after: {job.last_error}"
    elif run.status is RunStatus.RUNNING:
        message = f"re-dispatched (attempt {attempt}): the previous worker stopped heartbeating"
    else:
        return None
    if run_start.supported(conn):
        return await _in_one(conn, run, values, message, now)
    started = await runs_db.move_status(conn, run.id, current=run.status, values=values)
    if started is None:
        return None
    await log_event(conn, started, now, "started", message)
    if run.status is RunStatus.QUEUED:
        await publish_change(conn, started, previous=run.status, now=now)
    return started


async def _in_one(
    conn: Connection, run: Run, values: dict[str, Any], message: str, now: datetime
) -> Run | None:
    from_queue = run.status is RunStatus.QUEUED
    started = await run_start.start_in_one(
        conn,
        run.id,
        current=run.status.value,
        values=values,
        message=message,
        event_types=STARTED_EVENTS if from_queue else {},
        now=now,
    )
    if started is None:
        return None
    note_change(conn, started.account_id)  # as ``run_log.log_event`` does
    if from_queue:
        announce_change(conn, started, previous=run.status)  # as ``publish_change`` does
    return started
