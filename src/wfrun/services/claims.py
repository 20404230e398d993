"""Claiming work: a worker takes one job (or a batch), places its run on an engine instance when
the engine needs one, and starts (or resumes) the run — one short transaction. A claimed job
whose run needs no execution (ended, cancelled while waiting, out of attempts) is ended here.

Every later write of the claim carries ``(run, attempt)``: it matches only while the run is
``running`` under that attempt, so a worker that lost its lease cannot change a run another
worker now owns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from wfrun.clock import utcnow
from wfrun.db import assets as assets_db
from wfrun.db import instances as instances_db
from wfrun.db import runs as runs_db
from wfrun.db import workflows as workflows_db
from wfrun.db.assets import Asset
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run
from wfrun.db.stream import note_change
from wfrun.domain.failures import Failure, FailureCode, cancelled
from wfrun.domain.pricing import release
from wfrun.domain.revisions import RevisionSpec
from wfrun.domain.runs import RunStatus, is_terminal
from wfrun.domain.scheduling import INSTANCE_KINDS, choose_instance
from wfrun.queue import broker, claim_start, quotas
from wfrun.queue.broker import Job, JobStatus
from wfrun.services import lanes, ops_log, run_deadlines, run_starts
from wfrun.services.catalog import revision_spec
from wfrun.services.model_runs import MODEL_RUN_REVISION
from wfrun.services.queue_deadlines import timed_out
from wfrun.services.run_endings import Ending, end_run

REDISPATCH_RECHECK = timedelta(seconds=1)
_SPECS: dict[str, RevisionSpec] = {}
_SPECS_KEPT = 1024
_ENGINE_PROMPT_NAMESPACE = uuid.UUID("6f1c2b1e-6a53-4c1e-9d55-77667275e000")


@dataclass(frozen=True)
class Claim:
    """A job this worker now owns, with what it needs to run it."""

    job_id: str
    attempt: int
    run: Run
    spec: RevisionSpec
    assets: dict[str, Asset] = field(default_factory=dict)
    """The ``asset://`` inputs' records, by asset id."""
    instance_url: str | None = None
    """The engine instance the run was placed on (engines that need one)."""
    first_dispatch: bool = False
    """No earlier attempt was ever handed to an engine instance (attempt 1, no instance
    recorded before this claim): nothing can know the run's engine prompt id yet, so the
    engine submits without looking it up first."""


class Fenced(Exception):
    """This attempt no longer owns the run (lease lost or run finished elsewhere)."""


class CancelRequested(Exception):
    """The user asked to cancel; stop at this node boundary."""


def engine_prompt_id(run_id: str) -> str:
    """The uuid an engine knows a run by (ComfyUI's ``prompt_id``): derived from the run, so
    every attempt uses the same one and a re-dispatched attempt attaches to the prompt its
    predecessor already submitted instead of running it twice."""
    return str(uuid.uuid5(_ENGINE_PROMPT_NAMESPACE, run_id))


def create_outcome_unknown(run: Run) -> bool:
    """A provider run whose upstream create was attempted but not recorded: a task may exist
    (and be billed), so a cancel must go through dispatch, which looks for it first."""
    started = (run.provider_state or {}).get("create_started_at")
    return started is not None and run.provider_task_id is None


@dataclass(frozen=True, slots=True)
class Batch:
    """What one claim took: runs to execute (queue order), jobs that needed none (``settled``),
    and whether it found fewer than it could take (``exhausted``: wait for a wake-up)."""

    claims: list[Claim]
    settled: int
    exhausted: bool = True


async def claim_next(
    db: Database, *, worker_id: str, lease: timedelta, running_cap: int | None = None
) -> Claim | Literal["empty", "settled"]:
    """Claim one job and start (or resume) its run.

    Returns the claim; ``"empty"`` when nothing is claimable; ``"settled"`` when a job was
    claimed but needed no execution (its run had ended, was cancelled while waiting, missed
    its queue deadline, or exhausted its attempts and was failed here, or no instance had
    room after all). Lanes whose instances are all full are passed by: their runs keep their
    places without being claimed until a slot frees (a finished run wakes its worker; on
    PostgreSQL the job's change notifies every worker). Runs of an account running
    ``running_cap`` runs (or its override) wait their turn the same way.
    """
    batch = await claim_batch(db, worker_id=worker_id, lease=lease, running_cap=running_cap)
    if batch.claims:
        return batch.claims[0]
    return "settled" if batch.settled else "empty"


async def claim_batch(
    db: Database,
    *,
    worker_id: str,
    lease: timedelta,
    running_cap: int | None = None,
    limit: int = 1,
) -> Batch:
    """Claim up to ``limit`` jobs in queue order, each as :func:`claim_next` would, counting
    each account's running-run cap within the batch: one statement on PostgreSQL; SQLite
    claims one job a transaction (its one writer gains nothing from more)."""
    now = utcnow()
    try:
        batch, rest = await _claim(db, worker_id, lease, now, running_cap, max(1, limit))
    except _PastRunningCap:  # rolled back; a claim now sees the one that committed first
        return Batch([], 0, exhausted=False)
    for job, run in rest:  # one ending or placement a transaction: the lock order holds
        try:
            async with db.transaction(write=True) as conn:
                fresh = await runs_db.find_run(conn, run.id) if run is not None else None
                batch = _counted(batch, await _go_on(conn, job, fresh, now))
        except Exception:  # the runs already started still run; this job's lease lapses
            logging.getLogger(__name__).exception("claimed job %s failed to go on", job.id)
    return batch


def _counted(batch: Batch, outcome: Claim | Literal["empty", "settled"]) -> Batch:
    if isinstance(outcome, Claim):
        return replace(batch, claims=[*batch.claims, outcome])
    return replace(batch, settled=batch.settled + (outcome == "settled"))


class _PastRunningCap(Exception):
    """A PostgreSQL claim that a claim at the same instant left past an account's cap."""


async def _claim(
    db: Database,
    worker_id: str,
    lease: timedelta,
    now: datetime,
    running_cap: int | None,
    limit: int,
) -> tuple[Batch, list[tuple[Job, Run | None]]]:
    """The batch (started runs, and at most one job of the general path) and the other jobs
    that need the general path: two endings or placements in one transaction could take
    account, key-counter or instance locks against another batch's order (a deadlock)."""
    async with db.transaction(write=True) as conn:
        full = await lanes.full_lanes(conn, now)
        if db.is_sqlite:  # one job a transaction: it cannot know it took the last one
            job = await broker.claim(
                conn,
                worker_id=worker_id,
                lease=lease,
                now=now,
                full_lanes=full,
                running_cap=running_cap,
            )
            found: list[Claim | tuple[Job, Run | None]] = (
                [] if job is None else [(job, await runs_db.find_run(conn, job.run_id))]
            )
            exhausted = not found
        else:
            found, capped = await _claim_and_start(
                conn, worker_id, lease, now, full, running_cap, limit
            )
            exhausted = len(found) < limit and not capped  # a cap may have trimmed it
        batch = Batch([item for item in found if isinstance(item, Claim)], 0, exhausted)
        rest = [item for item in found if not isinstance(item, Claim)]
        if rest:
            batch = _counted(batch, await _go_on(conn, *rest.pop(0), now))
    return batch, rest


async def _go_on(
    conn: Connection, job: Job, run: Run | None, now: datetime
) -> Claim | Literal["empty", "settled"]:
    """The general path of a claimed job the one-statement start left alone."""
    if run is None:
        return "empty"
    if await _needs_no_execution(conn, job, run, now):
        return "settled"
    return await _start_claimed(conn, job, run, now)


async def _hold_places(
    conn: Connection, found: list[claim_start.Claimed], default_cap: int | None
) -> bool:
    """Raise :class:`_PastRunningCap` unless the claims keep within their accounts'
    running-run caps (no statement without a cap); whether any cap applied."""
    caps = {}
    for claimed in found:
        own = claimed.own_running_cap
        cap = own if own is not None else default_cap
        if cap is not None:
            caps[claimed.job.account_id] = cap
    if await quotas.past_running_caps(conn, caps):
        raise _PastRunningCap
    return bool(caps)


async def _started(conn: Connection, job: Job, run: Run, has_assets: bool) -> Claim:
    """The claim of a run ``queue.claim_start`` started: what the general path adds after
    its writes (the change's wake-ups and log line), and what the worker needs to run it."""
    note_change(conn, run.account_id)
    ops_log.status_changed(conn, run, previous=RunStatus.QUEUED)
    spec = await _spec(conn, run.revision_id)
    assets = await assets_db.assets_for_run(conn, run.id) if has_assets else {}
    first = job.attempts == 1 and run.instance_id is None and run.engine_prompt_id is None
    return Claim(job.id, job.attempts, run, spec, assets, None, first_dispatch=first)


async def _assets(conn: Connection, run_id: str, spec: RevisionSpec) -> dict[str, Asset]:
    """The run's ``asset://`` inputs' records: none without a media input."""
    if not any(spec.is_media for spec in spec.inputs):
        return {}
    return await assets_db.assets_for_run(conn, run_id)


async def _spec(conn: Connection, revision_id: str) -> RevisionSpec:
    """A revision's spec; revisions never change once written (but wfrun's own model-run
    revision, whose prices follow settings), so a worker keeps the ones it has read."""
    spec = _SPECS.get(revision_id)
    if spec is None:
        revision = await workflows_db.find_revision(conn, revision_id)
        assert revision is not None
        spec = revision_spec(revision)
        if revision_id != MODEL_RUN_REVISION:
            if len(_SPECS) >= _SPECS_KEPT:
                _SPECS.clear()
            _SPECS[revision_id] = spec
    return spec


async def _claim_and_start(
    conn: Connection,
    worker_id: str,
    lease: timedelta,
    now: datetime,
    full: Collection[str],
    running_cap: int | None,
    limit: int,
) -> tuple[list[Claim | tuple[Job, Run | None]], bool]:
    """PostgreSQL's one-statement claim of a batch: per job, in queue order, the started
    claim, or the claimed job and run that need the general path; and whether a running-run
    cap applied to any of them (it may have left jobs out of a short batch)."""
    found = await claim_start.claim_and_start(
        conn,
        worker_id=worker_id,
        lease=lease,
        now=now,
        full_lanes=full,
        running_cap=running_cap,
        instance_kinds=INSTANCE_KINDS,
        started_events=run_starts.STARTED_EVENTS,
        limit=limit,
    )
    capped = await _hold_places(conn, found, running_cap)
    claimed: list[Claim | tuple[Job, Run | None]] = [
        await _started(conn, c.job, c.run, c.has_assets) if c.started else (c.job, c.run)
        for c in found
    ]
    return claimed, capped


async def _needs_no_execution(conn: Connection, job: Job, run: Run, now: datetime) -> bool:
    if job.attempts > job.max_attempts:
        await _give_up(conn, job, run, now)
    elif is_terminal(run.status):  # ended while its job waited: nothing to run
        await broker.finish(conn, job_id=job.id, attempt=None, status=JobStatus.CANCELLED, now=now)
    elif run.status is RunStatus.QUEUED and job.start_by is not None and job.start_by <= now:
        ended = await end_run(conn, run, timed_out(run, job.start_by, None), now=now)
        assert ended is not None, "the claim holds the job's lock: nothing else ends the run"
    elif run.cancel_requested_at is not None and not create_outcome_unknown(run):
        ended = await end_run(conn, run, _cancelled_waiting(run), now=now, attempt=run.attempt)
        assert ended is not None, "the claim holds the job's lock: nothing else ends the run"
    else:
        return False
    return True


async def _start_claimed(
    conn: Connection, job: Job, run: Run, now: datetime
) -> Claim | Literal["settled"]:
    spec = await _spec(conn, run.revision_id)
    if run_deadlines.overdue(run, spec, now):  # it waited for a retry or its instance too long
        await end_run(conn, run, run_deadlines.overdue_ending(run, spec), now=now)
        return "settled"
    placement = None
    if spec.engine_kind in INSTANCE_KINDS:
        candidates = await instances_db.lock_schedulable(conn, spec.engine_kind)
        placement = choose_instance(candidates, spec.required_labels, previous=run.instance_id)
        if placement is None:  # no room: wait, in place, for the next free slot
            await broker.defer(conn, job_id=job.id, attempt=job.attempts, at=_recheck(run, now))
            return "settled"
    at = None if placement is None else (placement.id, engine_prompt_id(run.id))
    started = await run_starts.start(conn, job, run, now, at)
    if started is None:
        await broker.finish(conn, job_id=job.id, attempt=None, status=JobStatus.CANCELLED, now=now)
        return "settled"
    assets = await _assets(conn, run.id, spec)
    url = None if placement is None else placement.url
    first = job.attempts == 1 and run.instance_id is None and run.engine_prompt_id is None
    return Claim(job.id, job.attempts, started, spec, assets, url, first_dispatch=first)


def _recheck(run: Run, now: datetime) -> datetime:
    """When a job without room is due again. A new run's lane is passed by while it is full
    (``lanes.full_lanes``), so it is due at once and keeps its place; a re-dispatch whose
    instance is gone is not passed by, so it looks again after :data:`REDISPATCH_RECHECK`."""
    return now if run.instance_id is None else now + REDISPATCH_RECHECK


def _cancelled_waiting(run: Run) -> Ending:
    """A run whose job was waiting (transient retry, or no instance free) when the user
    cancelled: nothing executes it now, so it ends here and its freeze is released."""
    return Ending(
        RunStatus.CANCELLED,
        release(run.quote_amount),
        "cancelled while waiting; freeze released",
        cancelled("cancelled while waiting to be (re)dispatched; the freeze was released"),
    )


def _exhausted(job: Job) -> Failure:
    if job.last_error:  # the attempts ended in transient engine failures
        return Failure(
            FailureCode.ENGINE_UNAVAILABLE,
            f"gave up after {job.max_attempts} attempts; last error: {job.last_error}; "
            "freeze released",
        )
    return Failure(
        FailureCode.WORKER_LOST,
        f"the worker running it stopped {job.max_attempts} times; freeze released",
    )


async def _give_up(conn: Connection, job: Job, run: Run, now: datetime) -> None:
    failure = _exhausted(job)
    ops_log.gave_up(conn, run, attempts=job.max_attempts, failure=failure)
    if not is_terminal(run.status):
        ending = Ending(
            RunStatus.FAILED,
            release(run.quote_amount),
            f"{failure.code.name}: {failure.detail}",
            failure,
        )
        if await end_run(conn, run, ending, now=now, attempt=run.attempt) is not None:
            return
    await broker.finish(
        conn,
        job_id=job.id,
        attempt=job.attempts,
        status=JobStatus.FAILED,
        now=now,
        error=failure.detail,
    )
