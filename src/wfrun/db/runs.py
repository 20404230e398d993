"""Runs, their events and freezes. Callers own the transaction; nothing here commits.

Worker writes are *fenced*: they carry the attempt number and match only while the run is
``running`` under that attempt, so a stale worker's late writes change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Update, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import freezes, run_events, runs
from wfrun.domain.runs import FreezeStatus, RunStatus


@dataclass(frozen=True, slots=True)
class Run:
    """One row of ``runs``: a paid run (``family`` workflow) or a model run (``model``)."""

    id: str
    account_id: str
    workflow_id: str
    revision_id: str
    api_key_id: str | None
    idempotency_key: str
    idempotency_scope: str
    family: str
    request_fingerprint: str
    title: str
    inputs: dict[str, Any]
    accept_external_cost_risk: bool
    status: RunStatus
    attempt: int
    quote_amount: int
    quote_external: int
    task_id: str
    prompt_id: str
    """chenyu's wire ``prompt_id`` (an opaque id of ours)."""
    engine_prompt_id: str | None
    """The id the engine knows the run by (ComfyUI's uuid ``prompt_id``)."""
    instance_id: str | None
    provider_task_id: str | None
    provider_status: str | None
    provider_state: dict[str, Any] | None
    usage: dict[str, Any] | None
    billing_run_id: str
    progress_percent: int
    progress_snapshot: dict[str, Any] | None
    outputs: dict[str, Any] | None
    execution_ms: int | None
    compute_cost: int | None
    external_model_cost: int | None
    absorbed_external_cost: int | None
    final_amount: int | None
    released_amount: int | None
    max_cost: int | None
    """The caller's cap on what the run may be charged (``max_cost``), if any."""
    credit_limit: int
    """How far below zero the operator lets the account go, as at submit."""
    spend_window: str | None
    """The key's spend-limit period the run counts in (``db.spend``), if its key has a limit."""
    absorbed_over_limit: int | None
    """What the run consumed beyond its ceiling, absorbed by the operator."""
    freeze_status: FreezeStatus
    error_code: str | None
    error_reason: str | None
    error_detail: str | None
    error_category: str | None
    cancel_requested_at: datetime | None
    outputs_expire_at: datetime | None
    outputs_deleted_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    terminal_at: datetime | None
    updated_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunStatus(self.status))
        object.__setattr__(self, "freeze_status", FreezeStatus(self.freeze_status))


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One line of a run's log (``run_events``)."""

    id: int
    run_id: str
    attempt: int
    at: datetime
    event_type: str
    level: str
    message: str
    node_id: str | None
    progress_percent: int | None


@dataclass(frozen=True, slots=True)
class Freeze:
    """A run's freeze (``freezes``: the amount set aside at submit), as closing it returns it."""

    id: str
    account_id: str
    amount: int


IDEMPOTENCY = ["account_id", "workflow_id", "idempotency_scope", "idempotency_key"]
"""The columns of a run's idempotency key (unique; ``queue.submission`` claims it)."""


async def find_by_idempotency(
    conn: Connection, *, account_id: str, workflow_id: str, key: str, scope: str = ""
) -> Run | None:
    query = select(runs).where(
        runs.c.account_id == account_id,
        runs.c.workflow_id == workflow_id,
        runs.c.idempotency_scope == scope,
        runs.c.idempotency_key == key,
    )
    return record_or_none(Run, (await conn.execute(query)).mappings().first())


async def find_run(conn: Connection, run_id: str, *, account_id: str | None = None) -> Run | None:
    query = select(runs).where(runs.c.id == run_id)
    if account_id is not None:
        query = query.where(runs.c.account_id == account_id)
    return record_or_none(Run, (await conn.execute(query)).mappings().first())


async def move_status(
    conn: Connection,
    run_id: str,
    *,
    current: RunStatus,
    values: dict[str, Any],
    attempt: int | None = None,
) -> Run | None:
    """Conditionally update a run that is still ``current`` (and at ``attempt`` when given).

    Returns the updated run, or None when the guard did not match (someone else moved it).
    """
    query = update(runs).where(runs.c.id == run_id, runs.c.status == current)
    if attempt is not None:
        query = query.where(runs.c.attempt == attempt)
    result = await conn.execute(query.values(**values).returning(*runs.c))
    return record_or_none(Run, result.mappings().first())


async def update_fenced(
    conn: Connection, run_id: str, attempt: int, values: dict[str, Any]
) -> bool:
    """Update a run still ``running`` under ``attempt``; False when fenced out."""
    result = await conn.execute(_fenced(run_id, attempt).values(**values))
    return result.rowcount == 1


class TaskTaken(Exception):
    """Another run already owns that provider task id (unique ``provider_task_id``)."""


async def attach_provider_task(
    conn: Connection, run_id: str, attempt: int, values: dict[str, Any]
) -> bool:
    """Fenced write of a run's provider task; False when fenced out.

    Raises:
        TaskTaken: another run owns ``values["provider_task_id"]`` (the transaction is spent).
    """
    try:
        return await update_fenced(conn, run_id, attempt, values)
    except IntegrityError as exc:
        raise TaskTaken(str(values.get("provider_task_id"))) from exc


def _fenced(run_id: str, attempt: int) -> Update:
    return update(runs).where(
        runs.c.id == run_id, runs.c.attempt == attempt, runs.c.status == RunStatus.RUNNING
    )


async def find_runs(conn: Connection, run_ids: list[str]) -> dict[str, Run]:
    rows = (await conn.execute(select(runs).where(runs.c.id.in_(run_ids)))).mappings()
    return {run.id: run for run in records(Run, rows)}


async def provider_task_ids_since(conn: Connection, since: datetime) -> set[str]:
    """Provider task ids recorded on runs created since ``since``."""
    query = select(runs.c.provider_task_id).where(
        runs.c.provider_task_id.is_not(None), runs.c.created_at >= since
    )
    return {str(t) for t in (await conn.execute(query)).scalars().all()}


async def request_cancel(conn: Connection, run_id: str, now: datetime) -> bool:
    result = await conn.execute(
        update(runs)
        .where(
            runs.c.id == run_id,
            runs.c.status == RunStatus.RUNNING,
            runs.c.cancel_requested_at.is_(None),
        )
        .values(cancel_requested_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def cancel_flags(conn: Connection, run_ids: list[str]) -> set[str]:
    """The subset of ``run_ids`` whose cancellation was requested."""
    if not run_ids:
        return set()
    query = select(runs.c.id).where(runs.c.id.in_(run_ids), runs.c.cancel_requested_at.is_not(None))
    return set((await conn.execute(query)).scalars().all())


async def add_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(run_events), rows)


async def list_events(conn: Connection, run_id: str, *, limit: int) -> list[RunEvent]:
    query = (
        select(run_events)
        .where(run_events.c.run_id == run_id)
        .order_by(run_events.c.id.desc())
        .limit(limit)
    )
    rows = records(RunEvent, (await conn.execute(query)).mappings())
    return list(reversed(rows))


async def recent_average_ms(conn: Connection, revision_id: str, *, sample: int) -> int | None:
    """Mean execution time of the revision's last ``sample`` successful runs."""
    recent = recent_successes(revision_id, sample=sample).subquery()
    value = (await conn.execute(select(func.avg(recent.c.execution_ms)))).scalar_one()
    return None if value is None else int(value)


def recent_successes(revision_id: Any, *, sample: int) -> Select[int | None]:
    """The execution times of the revision's last ``sample`` successful runs (``revision_id``
    a value or a column): ``sample`` entries of ``ix_runs_revision_status_terminal``."""
    return (
        select(runs.c.execution_ms)
        .where(runs.c.revision_id == revision_id, runs.c.status == RunStatus.SUCCEEDED)
        .order_by(runs.c.terminal_at.desc())
        .limit(sample)
    )


# ---- freezes ---------------------------------------------------------------------------------


async def close_freeze(
    conn: Connection, run_id: str, status: FreezeStatus, now: datetime
) -> Freeze | None:
    """Close the run's freeze exactly once: returns it when this call closed it, else None."""
    result = await conn.execute(
        update(freezes)
        .where(freezes.c.run_id == run_id, freezes.c.status == FreezeStatus.FROZEN)
        .values(status=status, resolved_at=now)
        .returning(freezes.c.id, freezes.c.account_id, freezes.c.amount)
    )
    return record_or_none(Freeze, result.mappings().first())


async def running_since_by_instance(
    conn: Connection, instance_ids: list[str]
) -> dict[str, list[datetime]]:
    """When the runs running on these instances started, by instance."""
    if not instance_ids:
        return {}
    query = select(runs.c.instance_id, runs.c.started_at).where(
        runs.c.instance_id.in_(instance_ids),
        runs.c.status == RunStatus.RUNNING,
        runs.c.started_at.is_not(None),
    )
    found: dict[str, list[datetime]] = {}
    for instance_id, started_at in await conn.execute(query):
        found.setdefault(instance_id, []).append(started_at)
    return found
