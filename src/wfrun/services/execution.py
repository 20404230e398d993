"""Run use cases on the worker side. Each function is one short transaction; engine calls
happen between them, never inside one.

Every write carries ``(run, attempt)``: it matches only while the run is ``running`` under that
attempt, so a worker that lost its lease cannot change a run another worker now owns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun.clock import utcnow
from wfrun.domain.pricing import Settlement, compute_cost, release, settle
from wfrun.domain.revisions import RevisionSpec
from wfrun.domain.runs import FreezeStatus, RunStatus, is_terminal, transition
from wfrun.domain.scheduling import INSTANCE_KINDS, choose_instance
from wfrun.queue import broker
from wfrun.queue.broker import JobStatus
from wfrun.records import Record
from wfrun.services import billing
from wfrun.services.catalog import revision_spec
from wfrun.store import assets as asset_store
from wfrun.store import instances as instance_store
from wfrun.store import runs as run_store
from wfrun.store import workflows as workflow_store
from wfrun.store.assets import Asset
from wfrun.store.database import Database
from wfrun.store.instances import LoadedInstance


@dataclass(frozen=True)
class Claim:
    """A job this worker now owns, with what it needs to run it."""

    job_id: str
    attempt: int
    run: Record
    spec: RevisionSpec
    assets: dict[str, Asset] = field(default_factory=dict)
    """The ``asset://`` inputs' rows, by asset id."""
    instance_url: str | None = None
    """The engine instance the run was placed on (engines that need one)."""


@dataclass(frozen=True)
class Failure:
    code: str
    reason: str
    detail: str
    node_id: str | None = None
    status: int = 500


NO_CAPACITY_RETRY = timedelta(seconds=1)
_PROMPT_NAMESPACE = uuid.UUID("6f1c2b1e-6a53-4c1e-9d55-77667275e000")


def engine_prompt_id(run_id: str) -> str:
    """The uuid an engine knows a run by: the same for every attempt, so a re-dispatched
    attempt can find (and attach to) the prompt its predecessor already submitted."""
    return str(uuid.uuid5(_PROMPT_NAMESPACE, run_id))


def create_outcome_unknown(run: Record) -> bool:
    """A provider run whose upstream create was attempted but not recorded: a task may exist
    (and be billed), so a cancel must go through dispatch, which looks for it first."""
    started = (run["provider_state"] or {}).get("create_started_at")
    return started is not None and run["provider_task_id"] is None


class Fenced(Exception):
    """This attempt no longer owns the run (lease lost or run finished elsewhere)."""


class CancelRequested(Exception):
    """The user asked to cancel; stop at this node boundary."""


async def claim_next(
    db: Database, *, worker_id: str, lease: timedelta
) -> Claim | Literal["empty", "settled"]:
    """Claim one job and start (or resume) its run.

    Returns the claim; ``"empty"`` when nothing is claimable; ``"settled"`` when a job was
    claimed but needed no execution (its run had ended, or it exhausted its attempts and was
    failed here).
    """
    now = utcnow()
    async with db.transaction(write=True) as conn:
        job = await broker.claim(conn, worker_id=worker_id, lease=lease, now=now)
        if job is None:
            return "empty"
        run = await run_store.find_run(conn, job["run_id"])
        assert run is not None
        if job["attempts"] > job["max_attempts"]:
            await _give_up(conn, job, run, now)
            return "settled"
        if is_terminal(RunStatus(run["status"])):  # cancelled while queued: nothing to run
            await broker.finish(
                conn, job_id=job["id"], attempt=None, status=JobStatus.CANCELLED, now=now
            )
            return "settled"
        if run["cancel_requested_at"] is not None and not create_outcome_unknown(run):
            await _cancel_waiting(conn, job, run, now)  # cancelled while waiting for a retry
            return "settled"
        revision = await workflow_store.find_revision(conn, run["revision_id"])
        assert revision is not None
        spec = revision_spec(revision)
        needs_instance = spec.engine_kind in INSTANCE_KINDS
        placement = await _place(conn, spec, run) if needs_instance else None
        if needs_instance and placement is None:
            await broker.defer(conn, job_id=job["id"], at=now + NO_CAPACITY_RETRY)
            return "settled"
        started = await _start(conn, job, run, now, placement)
        if started is None:
            await broker.finish(
                conn, job_id=job["id"], attempt=None, status=JobStatus.CANCELLED, now=now
            )
            return "settled"
        assets = await asset_store.assets_for_run(conn, run["id"])
    instance_url = placement.url if placement else None
    return Claim(job["id"], job["attempts"], started, spec, assets, instance_url)


async def _place(conn: AsyncConnection, spec: RevisionSpec, run: Record) -> LoadedInstance | None:
    """The instance to run on, or None when no healthy instance with the required labels has
    room now (the job then waits)."""
    candidates = await instance_store.lock_schedulable(conn, spec.engine_kind)
    return choose_instance(candidates, spec.required_labels, previous=run["instance_id"])


async def _start(
    conn: AsyncConnection, job: Record, run: Record, now: datetime, placement: LoadedInstance | None
) -> RowMapping | None:
    attempt = job["attempts"]
    status = RunStatus(run["status"])
    values: dict[str, Any] = {"attempt": attempt, "updated_at": now, "progress_percent": 0}
    if placement is not None:
        values |= {"instance_id": placement.id, "engine_prompt_id": engine_prompt_id(run["id"])}
    if status is RunStatus.QUEUED:
        values |= {"status": transition(status, RunStatus.RUNNING), "started_at": now}
        message = f"started (attempt {attempt})"
    elif status is RunStatus.RUNNING and job["last_error"]:
        message = f"dispatching again (attempt {attempt}) after: {job['last_error']}"
    elif status is RunStatus.RUNNING:
        message = f"re-dispatched (attempt {attempt}): the previous worker stopped heartbeating"
    else:
        return None
    started = await run_store.move_status(conn, run["id"], current=status, values=values)
    if started is not None:
        await _event(conn, started, now, "started", message)
    return started


async def _cancel_waiting(conn: AsyncConnection, job: Record, run: Record, now: datetime) -> None:
    """A running run whose job was waiting (transient retry, or no instance free) when the
    user cancelled: nothing executes it now, so end it here and release its freeze."""
    settlement = release(run["quote_amount"])
    moved = await run_store.move_status(
        conn,
        run["id"],
        current=RunStatus(run["status"]),
        attempt=run["attempt"],
        values={
            "status": transition(RunStatus(run["status"]), RunStatus.CANCELLED),
            "error_code": "USER_CANCELLED",
            "error_reason": "Run cancelled by the user.",
            "error_detail": "cancelled while waiting to be (re)dispatched; the freeze was released",
            "error_status": 200,
            "terminal_at": now,
            "updated_at": now,
            **_settlement_columns(settlement),
        },
    )
    if moved is not None:
        await billing.resolve_freeze(conn, run_id=run["id"], settlement=settlement, now=now)
        await _event(conn, moved, now, "cancelled", "cancelled while waiting; freeze released")
    await broker.finish(
        conn, job_id=job["id"], attempt=job["attempts"], status=JobStatus.CANCELLED, now=now
    )


def _exhausted(job: Record) -> Failure:
    if job["last_error"]:  # the attempts ended in transient engine failures
        return Failure(
            code="ENGINE_UNAVAILABLE",
            reason="The engine stayed unavailable.",
            detail=f"gave up after {job['max_attempts']} attempts; last error: "
            f"{job['last_error']}; freeze released",
            status=503,
        )
    return Failure(
        code="WORKER_LOST",
        reason="The run was interrupted too many times.",
        detail=f"the worker running it stopped {job['max_attempts']} times; freeze released",
    )


async def _give_up(conn: AsyncConnection, job: Record, run: Record, now: datetime) -> None:
    failure = _exhausted(job)
    status = RunStatus(run["status"])
    if status in (RunStatus.QUEUED, RunStatus.RUNNING):
        await _finish_failed(conn, run, run["attempt"], failure, now, current=status)
    await broker.finish(
        conn,
        job_id=job["id"],
        attempt=job["attempts"],
        status=JobStatus.FAILED,
        now=now,
        error=failure.detail,
    )


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
        row = await run_store.record_progress(
            conn,
            claim.run["id"],
            claim.attempt,
            {"progress_percent": percent, "progress_snapshot": snapshot, "updated_at": now},
        )
        if row is None:
            raise Fenced(f"attempt {claim.attempt} of {claim.run['id']} was superseded")
        await _event(
            conn,
            claim.run,
            now,
            event_type,
            message,
            node_id=node_id,
            percent=percent,
            attempt=claim.attempt,
        )
    if row["cancel_requested_at"] is not None:
        raise CancelRequested()


async def complete(
    db: Database,
    claim: Claim,
    *,
    outputs: dict[str, Any],
    execution_ms: int,
    retention: timedelta = timedelta(days=7),
    external: int = 0,
    usage: dict[str, Any] | None = None,
    compute: int | None = None,
) -> bool:
    """Mark the run succeeded and settle by actual usage (多退少补): compute time (or the
    given ``compute`` amount) plus the provider's ``external`` cost (from its reported
    ``usage``). False when fenced out."""
    prices = claim.spec.prices
    settlement = settle(
        frozen=claim.run["quote_amount"],
        compute=compute_cost(prices, execution_ms) if compute is None else compute,
        external=external,
        quoted_external=claim.run["quote_external"],
        accept_external_cost_risk=claim.run["accept_external_cost_risk"],
    )
    hours = claim.spec.output_retention_hours
    keep = timedelta(hours=hours) if hours is not None else retention
    values = {"outputs": outputs, "progress_percent": 100, "outputs_expire_at": utcnow() + keep}
    if usage is not None:
        values["usage"] = usage
    return await _finish(
        db, claim, RunStatus.SUCCEEDED, settlement, execution_ms, values, "succeeded"
    )


async def cancel_consumed(
    db: Database, claim: Claim, *, execution_ms: int, detail: str | None = None
) -> bool:
    """Stop a running run on request, charging only the seconds it consumed."""
    consumed = compute_cost(claim.spec.prices, execution_ms, include_fixed_fee=False)
    settlement = settle(
        frozen=claim.run["quote_amount"],
        compute=consumed,
        external=0,
        quoted_external=0,
        accept_external_cost_risk=False,
    )
    values = {
        "error_code": "USER_CANCELLED",
        "error_reason": "Run cancelled by the user.",
        "error_detail": detail
        or f"cancelled while running after {execution_ms} ms; charged the time used",
        "error_status": 200,
    }
    return await _finish(
        db, claim, RunStatus.CANCELLED, settlement, execution_ms, values, "cancelled while running"
    )


async def fail(db: Database, claim: Claim, failure: Failure, *, execution_ms: int | None) -> bool:
    """Fail the run and release its whole freeze. False when fenced out."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        done = await _finish_failed(
            conn,
            claim.run,
            claim.attempt,
            failure,
            now,
            current=RunStatus.RUNNING,
            execution_ms=execution_ms,
        )
        if done:
            await broker.finish(
                conn,
                job_id=claim.job_id,
                attempt=claim.attempt,
                status=JobStatus.FAILED,
                now=now,
                error=failure.detail,
            )
    return done


async def retry_later(db: Database, claim: Claim, *, delay: timedelta, error: str) -> bool:
    """Give the job back for another attempt after ``delay`` (transient engine failure)."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        done = await broker.reschedule(
            conn, job_id=claim.job_id, attempt=claim.attempt, at=now + delay, error=error
        )
        if done:
            await _event(
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
    started = claim.run["started_at"] or now
    if now + delay - started > timedelta(seconds=claim.spec.timeout_seconds):
        return False
    async with db.transaction(write=True) as conn:
        await broker.defer(conn, job_id=claim.job_id, at=now + delay, error=f"engine busy: {error}")
        await _event(
            conn,
            claim.run,
            now,
            "waiting",
            f"engine busy ({error}); trying again in {delay.total_seconds():g} s",
            level="warning",
            attempt=claim.attempt,
        )
    return True


async def _finish(
    db: Database,
    claim: Claim,
    target: RunStatus,
    settlement: Settlement,
    execution_ms: int,
    values: dict[str, Any],
    message: str,
) -> bool:
    now = utcnow()
    async with db.transaction(write=True) as conn:
        moved = await run_store.move_status(
            conn,
            claim.run["id"],
            current=RunStatus.RUNNING,
            attempt=claim.attempt,
            values={
                "status": transition(RunStatus.RUNNING, target),
                "execution_ms": execution_ms,
                "terminal_at": now,
                "updated_at": now,
                **_settlement_columns(settlement),
                **values,
            },
        )
        if moved is None:
            return False
        await billing.resolve_freeze(conn, run_id=claim.run["id"], settlement=settlement, now=now)
        job_status = JobStatus.SUCCEEDED if target is RunStatus.SUCCEEDED else JobStatus.CANCELLED
        await broker.finish(
            conn, job_id=claim.job_id, attempt=claim.attempt, status=job_status, now=now
        )
        await _event(conn, moved, now, target.value, message, percent=moved["progress_percent"])
    return True


async def _finish_failed(
    conn: AsyncConnection,
    run: Record,
    attempt: int,
    failure: Failure,
    now: datetime,
    *,
    current: RunStatus,
    execution_ms: int | None = None,
) -> bool:
    settlement = release(run["quote_amount"])
    moved = await run_store.move_status(
        conn,
        run["id"],
        current=current,
        attempt=attempt,
        values={
            "status": transition(current, RunStatus.FAILED),
            "execution_ms": execution_ms,
            "error_code": failure.code,
            "error_reason": failure.reason,
            "error_detail": failure.detail,
            "error_status": failure.status,
            "terminal_at": now,
            "updated_at": now,
            **_settlement_columns(settlement),
        },
    )
    if moved is None:
        return False
    await billing.resolve_freeze(conn, run_id=run["id"], settlement=settlement, now=now)
    await _event(
        conn,
        moved,
        now,
        "failed",
        f"{failure.code}: {failure.detail}",
        level="error",
        node_id=failure.node_id,
    )
    return True


def _settlement_columns(settlement: Settlement) -> dict[str, Any]:
    frozen = FreezeStatus.SETTLED if settlement.final_amount > 0 else FreezeStatus.RELEASED
    return {
        "compute_cost": settlement.compute_cost,
        "external_model_cost": settlement.external_model_cost,
        "absorbed_external_cost": settlement.absorbed_external_cost,
        "final_amount": settlement.final_amount,
        "released_amount": settlement.released_amount,
        "freeze_status": frozen,
    }


async def _event(
    conn: AsyncConnection,
    run: Record,
    now: datetime,
    kind: str,
    message: str,
    *,
    level: str = "info",
    node_id: str | None = None,
    percent: int | None = None,
    attempt: int | None = None,
) -> None:
    await run_store.add_events(
        conn,
        [
            {
                "run_id": run["id"],
                "attempt": run["attempt"] if attempt is None else attempt,
                "at": now,
                "event_type": kind,
                "level": level,
                "message": message,
                "node_id": node_id,
                "progress_percent": percent,
            }
        ],
    )


async def heartbeat(
    db: Database, *, worker_id: str, owned: list[tuple[str, int, str]], lease: timedelta
) -> tuple[set[str], set[str]]:
    """Extend the leases of ``owned`` (job, attempt, run) jobs and report on them.

    Returns (run ids whose lease was lost, run ids whose cancellation was requested).
    """
    now = utcnow()
    lost: set[str] = set()
    async with db.transaction(write=True) as conn:
        await broker.worker_heartbeat(conn, worker_id, now)
        for job_id, attempt, run_id in owned:
            if not await broker.extend_lease(
                conn, job_id=job_id, attempt=attempt, until=now + lease
            ):
                lost.add(run_id)
        cancelled = await run_store.cancel_flags(conn, [run for _, _, run in owned])
    return lost, cancelled


async def register_worker(
    db: Database, *, worker_id: str, hostname: str, pid: int, concurrency: int
) -> None:
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await broker.register_worker(
            conn,
            {
                "id": worker_id,
                "hostname": hostname,
                "pid": pid,
                "concurrency": concurrency,
                "started_at": now,
                "heartbeat_at": now,
            },
        )
