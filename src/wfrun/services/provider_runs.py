"""Runs that wait on a provider task (Seedance on Volcengine Ark).

A worker claims the run as usual, hands its media over and creates the upstream task, records
the task id on the run and *parks* the job (``tracking``): the worker slot is free again. A
tracker then checks due tasks in batches (one Ark list call for up to 500) and finishes runs
whose task ended. Each function is one short transaction; provider calls happen between them.
Every write is fenced by the run's attempt, as in :mod:`wfrun.services.claims`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import runs as runs_db
from wfrun.db import workflows as workflows_db
from wfrun.db.database import Database
from wfrun.db.runs import Run, TaskTaken
from wfrun.domain.revisions import RevisionSpec
from wfrun.domain.runs import RunStatus
from wfrun.queue import broker
from wfrun.services.catalog import revision_spec
from wfrun.services.claims import Claim, Fenced
from wfrun.services.run_log import log_event

PROGRESS = {"queued": 10, "running": 50}


async def begin_create(
    db: Database, claim: Claim, *, staged: list[str] | None = None
) -> tuple[datetime | None, datetime]:
    """Record that this attempt is about to create the upstream task.

    Returns (when an earlier attempt started a create whose outcome is unknown, or None;
    this attempt's start). Raises Fenced when the attempt no longer owns the run."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        current = await runs_db.find_run(conn, claim.run.id)
        assert current is not None
        state = dict(current.provider_state or {})
        previous = state.get("create_started_at")  # the first attempt's: never moved later
        state.setdefault("create_started_at", now.isoformat())
        if staged:
            state["staged_inputs"] = sorted({*state.get("staged_inputs", []), *staged})
        updated = await runs_db.update_fenced(
            conn, claim.run.id, claim.attempt, {"provider_state": state, "updated_at": now}
        )
        if not updated:
            raise Fenced(f"attempt {claim.attempt} of {claim.run.id} was superseded")
    return (datetime.fromisoformat(previous) if previous else None), now


async def claimed_task_ids(db: Database, *, since: datetime) -> set[str]:
    """Provider task ids already recorded on runs created since ``since``."""
    async with db.transaction() as conn:
        return await runs_db.provider_task_ids_since(conn, since)


async def record_task(
    db: Database,
    claim: Claim,
    task_id: str,
    *,
    first_check: timedelta,
    note: str,
) -> bool:
    """Attach the upstream task to the run and park its job for tracking.

    False when another run already owns ``task_id`` (a reconciliation picked a task that was
    not ours). Raises Fenced when this attempt no longer owns the run."""
    now = utcnow()
    try:
        async with db.transaction(write=True) as conn:
            await broker.lock_for_run(conn, claim.run.id)  # lock order: job → run
            updated = await runs_db.attach_provider_task(
                conn, claim.run.id, claim.attempt, _queued_upstream(task_id, now)
            )
            if not updated:
                raise Fenced(f"attempt {claim.attempt} of {claim.run.id} was superseded")
            await broker.park(
                conn, job_id=claim.job_id, attempt=claim.attempt, at=now + first_check, now=now
            )
            await log_event(conn, claim.run, now, "submitted", note, attempt=claim.attempt)
    except TaskTaken:
        return False
    return True


def _queued_upstream(task_id: str, now: datetime) -> dict[str, Any]:
    snapshot = {"provider": "ark", "task_id": task_id, "status": "queued"}
    return {
        "provider_task_id": task_id,
        "provider_status": "queued",
        "progress_percent": PROGRESS["queued"],
        "progress_snapshot": snapshot,
        "updated_at": now,
    }


async def park_existing(db: Database, claim: Claim, *, first_check: timedelta) -> None:
    """A re-dispatched run whose task was already created: just resume tracking it."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await broker.park(
            conn, job_id=claim.job_id, attempt=claim.attempt, at=now + first_check, now=now
        )
        await log_event(
            conn,
            claim.run,
            now,
            "resumed",
            f"re-attached to upstream task {claim.run.provider_task_id}",
            attempt=claim.attempt,
        )


@dataclass(frozen=True)
class Tracked:
    """A parked run whose upstream task is due for a check."""

    claim: Claim
    task_id: str

    @property
    def run(self) -> Run:
        return self.claim.run


async def claim_tracked(db: Database, *, limit: int, lease: timedelta) -> list[Tracked]:
    """Take up to ``limit`` due tracked runs (leased for ``lease``)."""
    now = utcnow()
    specs: dict[str, RevisionSpec] = {}
    found: list[Tracked] = []
    async with db.transaction(write=True) as conn:
        jobs = await broker.claim_tracking(conn, limit=limit, lease=lease, now=now)
        if not jobs:
            return []
        by_id = await runs_db.find_runs(conn, [job.run_id for job in jobs])
        for job in jobs:
            run = by_id.get(job.run_id)
            if run is None or run.provider_task_id is None:
                continue
            if run.revision_id not in specs:
                revision = await workflows_db.find_revision(conn, run.revision_id)
                assert revision is not None
                specs[run.revision_id] = revision_spec(revision)
            claim = Claim(job.id, job.attempts, run, specs[run.revision_id])
            found.append(Tracked(claim, run.provider_task_id))
    return found


async def observe(
    db: Database, item: Tracked, status: str, *, next_check: datetime, note: str | None = None
) -> None:
    """Record the upstream status (an event when it changed) and when to look again."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await broker.lock_for_run(conn, item.run.id)  # lock order: job → run
        changed = item.run.provider_status != status
        if changed:
            await runs_db.update_fenced(
                conn,
                item.run.id,
                item.claim.attempt,
                {
                    "provider_status": status,
                    "progress_percent": PROGRESS.get(status, item.run.progress_percent),
                    "progress_snapshot": {
                        "provider": "ark",
                        "task_id": item.task_id,
                        "status": status,
                    },
                    "updated_at": now,
                },
            )
            await log_event(
                conn,
                item.run,
                now,
                "progress",
                note or f"upstream task {item.task_id} is {status}",
                attempt=item.claim.attempt,
            )
        elif note:
            await log_event(conn, item.run, now, "progress", note, attempt=item.claim.attempt)
        await broker.track_again(conn, job_ids=[item.claim.job_id], at=next_check)


async def has_ended(db: Database, item: Tracked) -> bool:
    """Whether the tracked run has reached a terminal state."""
    async with db.transaction() as conn:
        run = await runs_db.find_run(conn, item.run.id)
    return run is not None and run.status not in (RunStatus.QUEUED, RunStatus.RUNNING)


async def check_later(db: Database, due: list[tuple[Tracked, datetime]]) -> None:
    """Tasks whose status did not change: when to look at each again, in one transaction."""
    if not due:
        return
    async with db.transaction(write=True) as conn:
        for item, at in sorted(due, key=lambda pair: pair[0].claim.job_id):  # lock order
            await broker.track_again(conn, job_ids=[item.claim.job_id], at=at)


async def remember(db: Database, item: Tracked, **state: Any) -> None:
    """Merge ``state`` into the run's provider state (fenced)."""
    async with db.transaction(write=True) as conn:
        merged = {**(item.run.provider_state or {}), **state}
        await runs_db.update_fenced(
            conn, item.run.id, item.claim.attempt, {"provider_state": merged}
        )
