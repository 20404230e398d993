"""Run read views for the API: the billing view, the list, and the live execution view with
queue place and ETA. Each function is one read transaction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import instances as instances_db
from wfrun.db import runs as runs_db
from wfrun.db import workflows as workflows_db
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run, RunEvent
from wfrun.db.workflows import Revision
from wfrun.domain.runs import RunStatus
from wfrun.domain.scheduling import INSTANCE_KINDS, labels_match
from wfrun.errors import ModelRunNotFound, RunNotFound
from wfrun.queue import broker
from wfrun.services.accounts import Principal

EVENT_LIMIT = 200


@dataclass(frozen=True)
class ExecutionView:
    run: Run
    events: Sequence[RunEvent]
    queue_position: int | None = None
    estimated_wait_sec: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def fetch_run(
    conn: Connection, principal: Principal, run_id: str, *, family: str = "workflow"
) -> Run:
    """The caller's run of ``family`` (model runs are not workflow runs, and vice versa)."""
    run = await runs_db.find_run(conn, run_id, account_id=principal.account_id)
    if run is None or run.family != family:
        if family == "model":
            raise ModelRunNotFound(f"model run {run_id} does not exist")
        raise RunNotFound(f"run {run_id} does not exist")
    return run


async def get_run(
    db: Database, principal: Principal, run_id: str, *, family: str = "workflow"
) -> Run:
    async with db.transaction() as conn:
        return await fetch_run(conn, principal, run_id, family=family)


async def list_runs(
    db: Database,
    principal: Principal,
    *,
    workflow_id: str | None,
    status: str | None,
    page: int,
    size: int,
) -> tuple[list[Run], int]:
    async with db.transaction() as conn:
        return await runs_db.list_runs(
            conn,
            account_id=principal.account_id,
            workflow_id=workflow_id,
            status=status,
            limit=size,
            offset=(page - 1) * size,
        )


async def get_execution(
    db: Database,
    principal: Principal,
    run_id: str,
    *,
    lease_seconds: float,
    family: str = "workflow",
) -> ExecutionView:
    """The live view: the run, its latest events, and queue place/ETA while queued."""
    async with db.transaction() as conn:
        run = await fetch_run(conn, principal, run_id, family=family)
        events = await runs_db.list_events(conn, run_id, limit=EVENT_LIMIT)
        if run.status is not RunStatus.QUEUED:
            return ExecutionView(run, events)
        place = await runs_db.queue_position(conn, run)
        wait = await _estimated_wait(conn, run, place, lease_seconds)
    return ExecutionView(run, events, place, wait)


async def _estimated_wait(
    conn: Connection, run: Run, place: int | None, lease_seconds: float
) -> int | None:
    if place is None:
        return None
    revision = await workflows_db.find_revision(conn, run.revision_id)
    assert revision is not None
    if revision.engine_kind in INSTANCE_KINDS:
        capacity, busy = await _instance_slots(conn, revision)
    else:
        now = utcnow()
        since = now - timedelta(seconds=3 * lease_seconds)
        capacity = await broker.live_capacity(conn, since=since)
        busy = await broker.busy_count(conn, now=now)
    average_ms = await runs_db.recent_average_ms(conn, run.revision_id, sample=20)
    if average_ms is None:
        average_ms = int(revision.prices["estimated_seconds"] * 1000)
    return estimate_wait_seconds(place, capacity, busy, average_ms)


async def _instance_slots(conn: Connection, revision: Revision) -> tuple[int, int]:
    """(capacity, busy) of the healthy active instances whose labels this revision needs."""
    required = revision.required_labels or {}
    usable = [
        row
        for row in await instances_db.list_instances(conn)
        if row.kind == revision.engine_kind
        and row.state == "active"
        and row.healthy
        and labels_match(required, row.labels)
    ]
    return sum(r.capacity for r in usable), sum(r.busy for r in usable)


def estimate_wait_seconds(place: int, capacity: int, busy: int, average_ms: int) -> int:
    """Seconds until the run at ``place`` starts, given worker slots and typical run time."""
    ahead = place - 1
    free = max(capacity - busy, 0)
    if capacity <= 0:
        rounds = ahead + 1
    elif ahead < free:
        return 0
    else:
        rounds = (ahead - free) // capacity + 1
    return math.ceil(rounds * average_ms / 1000)
