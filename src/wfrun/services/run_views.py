"""Run read views for the API: the billing view, the list, and the live execution view with
queue place, ETA and the reason a queued run waits (``services.lanes``). Each function is one
read transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import run_list
from wfrun.db import runs as runs_db
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run, RunEvent
from wfrun.domain import run_cursor
from wfrun.errors import ModelRunNotFound, RunNotFound
from wfrun.queue import execution_view
from wfrun.services import lanes
from wfrun.services.accounts import Principal


@dataclass(frozen=True)
class ExecutionView:
    run: Run
    events: Sequence[RunEvent]
    queue_position: int | None = None
    estimated_wait_sec: int | None = None
    wait_reason: str | None = None
    """Why a queued run has not started, in words."""
    extra: dict[str, Any] = field(default_factory=dict)


async def fetch_run(
    conn: Connection, principal: Principal, run_id: str, *, family: str = "workflow"
) -> Run:
    """The caller's run of ``family`` (model runs are not workflow runs, and vice versa)."""
    run = await runs_db.find_run(conn, run_id, account_id=principal.account_id)
    if run is None or run.family != family:
        raise _not_found(run_id, family)
    return run


def _not_found(run_id: str, family: str) -> ModelRunNotFound | RunNotFound:
    if family == "model":
        return ModelRunNotFound(f"model run {run_id} does not exist")
    return RunNotFound(f"run {run_id} does not exist")


async def get_run(
    db: Database, principal: Principal, run_id: str, *, family: str = "workflow"
) -> Run:
    async with db.read() as conn:
        return await fetch_run(conn, principal, run_id, family=family)


@dataclass(frozen=True)
class RunList:
    """One page of ``run/list``: the runs, their capped count (``db.run_list.list_runs``) and the
    cursor of the next page (None on the last)."""

    runs: list[Run]
    total: int
    next_cursor: str | None


async def list_runs(
    db: Database,
    principal: Principal,
    *,
    workflow_id: str | None,
    status: str | None,
    page: int | None,
    size: int,
    cursor: str | None = None,
) -> RunList:
    """The caller's runs, newest first: page ``page`` (1 when neither is given) or the page
    after ``cursor`` (a ``next_cursor`` made for the same filters); never both."""
    filters = run_cursor.RunFilters(workflow_id or None, status or None)
    after = run_cursor.start(page, cursor, filters)
    offset = ((page or 1) - 1) * size
    async with db.read() as conn:
        found, total = await run_list.list_runs(
            conn,
            account_id=principal.account_id,
            workflow_id=filters.workflow_id,
            status=filters.status,
            limit=size if after is None else size + 1,
            offset=offset,
            after=after,
        )
    shown = found[:size]
    # after a cursor one run past the page was asked for; by number the count reaches one past
    # the page when a next page exists (an empty page is counted apart: never a next page)
    more = len(found) > size if after is not None else bool(shown) and total > offset + len(shown)
    last = run_cursor.RunPosition(shown[-1].created_at, shown[-1].id) if more else None
    return RunList(shown, total, None if last is None else run_cursor.encode(last, filters))


async def get_execution(
    db: Database,
    principal: Principal,
    run_id: str,
    *,
    lease_seconds: float,
    family: str = "workflow",
    running_cap: int | None = None,
) -> ExecutionView:
    """The live view: the run, its latest events, and queue place/ETA while queued (the
    account's running-run cap, ``LimitBook.limits_of``, explains a wait it causes): one
    statement on PostgreSQL (``queue.execution_view``), without a transaction."""
    now = utcnow()
    ask = execution_view.ExecutionAsk(
        run_id,
        principal.account_id,
        now=now,
        live_since=now - timedelta(seconds=3 * lease_seconds),  # workers within three leases
        count_running=running_cap is not None,
    )
    async with db.read() as conn:
        read = await execution_view.read_execution(conn, ask)
    if read is None or read.run.family != family:
        raise _not_found(run_id, family)
    if read.waiting is None:
        return ExecutionView(read.run, read.events)
    info = lanes.queue_info(read.waiting, now=now, running_cap=running_cap)
    return ExecutionView(read.run, read.events, info.position, info.estimated_wait_sec, info.reason)
