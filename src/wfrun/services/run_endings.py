"""The one way a run ends. :func:`end_run` is called by every ending — success, failure, a
cancel while queued, while waiting for a retry or while running, a time limit, a provider's
outcome — inside the caller's transaction, and does all of it or, when the run had already
moved on, none of it:

1. lock the run's jobs (lock order job → key counter → account → run → freeze, the same on
   every path, CONTRIBUTING.md, so a cancel, a claim and a settlement never deadlock);
2. move the run's status conditionally (still at the status the caller saw and, for a
   worker, still under its attempt), writing its settlement and error columns;
3. resolve its freeze exactly once (settle or release; the freeze row, then the account);
4. close its open jobs;
5. log the ending and publish the change to the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from wfrun import ids
from wfrun.db import runs as runs_db
from wfrun.db import settlements
from wfrun.db.database import Connection
from wfrun.db.runs import Run
from wfrun.db.settlements import EndPlan
from wfrun.db.stream import note_change
from wfrun.domain.failures import Failure
from wfrun.domain.ledger import balance_deltas
from wfrun.domain.pricing import Settlement
from wfrun.domain.runs import FreezeStatus, RunStatus, change_events, transition
from wfrun.queue import broker
from wfrun.queue.broker import JobStatus
from wfrun.services import billing, ops_log, spending
from wfrun.services.billing import Resolution
from wfrun.services.run_changes import publish_change
from wfrun.services.run_log import log_event

_JOB_STATUS = {
    RunStatus.SUCCEEDED: JobStatus.SUCCEEDED,
    RunStatus.FAILED: JobStatus.FAILED,
    RunStatus.CANCELLED: JobStatus.CANCELLED,
}


@dataclass(frozen=True)
class Ending:
    """How a run ends: its terminal status, what its freeze resolves to, and why."""

    status: RunStatus
    settlement: Settlement
    message: str
    """The run log's line for the ending."""
    failure: Failure | None = None
    """The error columns (also for a cancel: ``USER_CANCELLED``)."""
    execution_ms: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    """Further run columns (outputs, usage, progress)."""


async def end_run(
    conn: Connection, run: Run, ending: Ending, *, now: datetime, attempt: int | None = None
) -> Run | None:
    """End ``run`` (as the caller read it) with ``ending``; the ended run, or None when it was
    no longer at ``run.status`` (or no longer under ``attempt``) and nothing changed."""
    if not (settlements.supported(conn) and in_one_statement(run, ending)):  # else it locks them
        await broker.lock_for_run(conn, run.id)
    ending = await _within_caps(conn, run, ending)
    if settlements.supported(conn):
        ended = await _end_in_one(conn, run, ending, now=now, attempt=attempt)
    else:
        ended = await _end_in_steps(conn, run, ending, now=now, attempt=attempt)
    if ended is not None:
        await spending.count_spend(conn, run, ending.settlement)
    return ended


def in_one_statement(run: Run, ending: Ending) -> bool:
    """Whether :func:`end_run` on PostgreSQL makes one statement and nothing else (no spend
    cap to read: ``spending.reads_for_caps``), so a caller may run it without a transaction
    (``Database.one_statement``: 1 round trip instead of 4)."""
    return not spending.reads_for_caps(run, ending.settlement)


async def _within_caps(conn: Connection, run: Run, ending: Ending) -> Ending:
    """``ending`` with its settlement clamped to the run's spending caps (``services.spending``):
    a clamped one also records ``COST_LIMIT_REACHED`` and the overrun the operator absorbed."""
    settled = await spending.within_caps(conn, run, ending.settlement)
    if settled == ending.settlement:
        return ending
    failure, values = spending.clamp_record(settled, ending.failure)
    return replace(ending, settlement=settled, failure=failure, values={**ending.values, **values})


async def _end_in_steps(
    conn: Connection, run: Run, ending: Ending, *, now: datetime, attempt: int | None
) -> Run | None:
    """:func:`end_run` statement by statement (SQLite)."""
    moved = await runs_db.move_status(
        conn,
        run.id,
        current=run.status,
        attempt=attempt,
        values=_columns(run.status, ending, now),
    )
    if moved is None:
        return None
    if (
        await billing.resolve_freeze(conn, run_id=run.id, settlement=ending.settlement, now=now)
        is None
    ):
        raise AssertionError(f"run {run.id} moved to {ending.status} but its freeze was closed")
    failure = _failure(ending)
    await broker.close_for_run(
        conn,
        run.id,
        status=_JOB_STATUS[ending.status],
        now=now,
        error=None if failure is None else failure.detail,
    )
    await log_event(conn, moved, now, ending.status.value, ending.message, **_line(ending, moved))
    await publish_change(conn, moved, previous=run.status, now=now)
    return moved


async def _end_in_one(
    conn: Connection, run: Run, ending: Ending, *, now: datetime, attempt: int | None
) -> Run | None:
    """:func:`end_run` after the jobs' locks, as one statement (``db.settlements``)."""
    settlement = ending.settlement
    resolution = billing.freeze_resolution(settlement)
    plan = _plan(run, ending, resolution, now=now, attempt=attempt)
    ended = await settlements.end_in_one(conn, plan, now=now)
    if ended is None:
        return None
    billing.freeze_resolved(conn, run.id, ended.freeze_account_id, resolution.status, settlement)
    note_change(conn, run.account_id)
    ops_log.status_changed(conn, ended.run, previous=run.status)
    return ended.run


def _plan(
    run: Run, ending: Ending, resolution: Resolution, *, now: datetime, attempt: int | None
) -> EndPlan:
    failure = _failure(ending)
    return EndPlan(
        run_id=run.id,
        current=run.status.value,
        attempt=attempt,
        values=_columns(run.status, ending, now),
        frozen=ending.settlement.frozen,
        freeze_status=resolution.status.value,
        entry={"id": ids.new_ledger_id(), "kind": resolution.kind.value, "memo": ""},
        postings=[(p.bucket.value, p.amount) for p in resolution.postings],
        deltas=balance_deltas(resolution.postings),
        open_jobs=[s.value for s in broker.OPEN_JOBS],
        job_values={
            "status": _JOB_STATUS[ending.status],
            "updated_at": now,
            "lease_until": None,
            "last_error": None if failure is None else failure.detail,
        },
        line={"event_type": ending.status.value, "message": ending.message} | _line(ending, None),
        event_types=change_events(ending.status),
    )


def _failure(ending: Ending) -> Failure | None:
    return ending.failure if ending.status is RunStatus.FAILED else None


def _line(ending: Ending, moved: Run | None) -> dict[str, Any]:
    """The ending's log line: its level, node and (when it did not fail) percentage."""
    failure = _failure(ending)
    fields: dict[str, Any] = {
        "level": "info" if failure is None else "error",
        "node_id": None if failure is None else failure.node_id,
    }
    if moved is None:
        return fields | {"with_percent": failure is None}
    return fields | {"percent": None if failure is not None else moved.progress_percent}


def _columns(current: RunStatus, ending: Ending, now: datetime) -> dict[str, Any]:
    settlement = ending.settlement
    values: dict[str, Any] = {
        "status": transition(current, ending.status),
        "terminal_at": now,
        "updated_at": now,
        "compute_cost": settlement.compute_cost,
        "external_model_cost": settlement.external_model_cost,
        "absorbed_external_cost": settlement.absorbed_external_cost,
        "final_amount": settlement.final_amount,
        "released_amount": settlement.released_amount,
        "freeze_status": (
            FreezeStatus.SETTLED if settlement.final_amount > 0 else FreezeStatus.RELEASED
        ),
    }
    if ending.execution_ms is not None:
        values["execution_ms"] = ending.execution_ms
    if ending.failure is not None:
        values |= {
            "error_code": ending.failure.code.name,
            "error_reason": ending.failure.reason,
            "error_detail": ending.failure.detail,
            "error_category": ending.failure.category.value,
        }
    clash = values.keys() & ending.values.keys()
    assert not clash, f"an ending may not override {sorted(clash)}"
    return values | dict(ending.values)
