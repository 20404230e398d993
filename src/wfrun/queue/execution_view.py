"""What ``run/execution`` shows, read in one statement on PostgreSQL (issue 17): the caller's
run, its latest log lines and, while it waits, the facts its ``queue_info`` is computed from
(``services.lanes``) — three round trips (BEGIN, the statement, COMMIT) in every state.

The statement, built once per shape (values bound at execution), has these parts:

- ``run``: the run, by id and account (the caller's check);
- ``events``: its latest :data:`EVENT_LIMIT` log lines, as one row of arrays;
- ``mine``: its waiting job while the run is queued. Everything else is computed per row of
  ``mine``, so a run that does not wait reads nothing more: the place (the lane's waiting
  jobs ahead of it in :data:`broker.QUEUE_ORDER`, ``ix_jobs_lane``); the lane's capacity (the
  instances of its kind with their runs' start times, or for a worker lane the live workers'
  slots and the jobs under a live lease with their runs' start times); the revision's mean
  execution time over its last :data:`RECENT_RUNS` successes (20 entries of
  ``ix_runs_revision_status_terminal``, never a scan) and its package estimate; the
  account's running count when it has a running-run cap.

SQLite (in-process) reads the same facts one statement each. The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, literal_column, null, select, true
from sqlalchemy.dialects.postgresql import aggregate_order_by

from wfrun.db import instances as instances_db
from wfrun.db import runs as runs_db
from wfrun.db import workflows as workflows_db
from wfrun.db.database import Connection
from wfrun.db.rows import record
from wfrun.db.runs import Run, RunEvent
from wfrun.db.schema import Json, UTCDateTime, engine_instances, jobs, revisions, workers
from wfrun.db.schema import run_events as events_table
from wfrun.db.schema import runs as runs_table
from wfrun.domain.lanes import parse_lane
from wfrun.domain.runs import RunStatus
from wfrun.domain.scheduling import INSTANCE_KINDS
from wfrun.queue import broker, quotas
from wfrun.queue import lanes as queue_lanes
from wfrun.queue.broker import QUEUE_ORDER, JobStatus

EVENT_LIMIT = 200
"""The run's latest log lines the view shows."""
RECENT_RUNS = 20
"""Runs of a revision whose mean execution time predicts the next one's."""


@dataclass(frozen=True, slots=True)
class InstanceLoad:
    """An instance of a waiting run's engine kind, as its lane's capacity counts it."""

    id: str
    kind: str
    labels: dict[str, str]
    state: str
    healthy: bool
    capacity: int
    busy: int
    """The runs running on it."""
    started: tuple[datetime, ...]
    """When those of them that started did."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """A queued run's waiting job and the facts its ``queue_info`` is computed from."""

    lane: str
    place: int
    """1-based, among the lane's waiting jobs."""
    instances: tuple[InstanceLoad, ...]
    """An instance lane's: the registered instances of its kind (else none)."""
    worker_slots: int
    """A worker lane's: the concurrency of the workers that heartbeated since ``live_since``."""
    worker_busy: int
    """A worker lane's: the jobs under a live lease."""
    busy_since: tuple[datetime, ...]
    """A worker lane's: when the runs of those jobs started."""
    measured_ms: int | None
    """The revision's mean execution time over its last :data:`RECENT_RUNS` successes."""
    estimated_seconds: float | None
    """The package's estimate (``prices.estimated_seconds``), when nothing was measured."""
    running: int | None
    """The account's runs in service, when asked for (``count_running``)."""


@dataclass(frozen=True, slots=True)
class ExecutionAsk:
    """Whose run to read, and when: a worker counts as live when it heartbeated since
    ``live_since``; ``count_running`` asks for the account's running count."""

    run_id: str
    account_id: str
    now: datetime
    live_since: datetime
    count_running: bool


@dataclass(frozen=True, slots=True)
class ExecutionRead:
    run: Run
    events: list[RunEvent]
    """The latest :data:`EVENT_LIMIT`, oldest first."""
    waiting: Waiting | None
    """While the run is queued and has a waiting job."""


async def read_execution(conn: Connection, ask: ExecutionAsk) -> ExecutionRead | None:
    """The account's run and what its execution view shows (module doc); None when the
    account has no such run."""
    if conn.dialect.name != "postgresql":
        return await _statement_by_statement(conn, ask)
    query = _STATEMENTS.get(ask.count_running)
    if query is None:
        query = _STATEMENTS[ask.count_running] = _statement(ask.count_running)
    params = {name: getattr(ask, name) for name in ("run_id", "account_id", "now", "live_since")}
    row = (await conn.execute(query, params)).mappings().first()
    if row is None:
        return None
    waiting = None if row["waiting_lane"] is None else _decode_waiting(row)
    return ExecutionRead(record(Run, row), _decode_events(row), waiting)


# ---- SQLite: one statement each -------------------------------------------------------------


async def _statement_by_statement(conn: Connection, ask: ExecutionAsk) -> ExecutionRead | None:
    run = await runs_db.find_run(conn, ask.run_id, account_id=ask.account_id)
    if run is None:
        return None
    events = await runs_db.list_events(conn, run.id, limit=EVENT_LIMIT)
    waiting = await _waiting(conn, run, ask) if run.status is RunStatus.QUEUED else None
    return ExecutionRead(run, events, waiting)


async def _waiting(conn: Connection, run: Run, ask: ExecutionAsk) -> Waiting | None:
    place = await queue_lanes.queue_place(conn, run.id)
    if place is None:
        return None
    kind = parse_lane(place.lane)[0]
    instances: tuple[InstanceLoad, ...] = ()
    slots = busy = 0
    since: tuple[datetime, ...] = ()
    if kind in INSTANCE_KINDS:
        instances = await _instance_loads(conn, kind)
    else:
        slots = await broker.live_capacity(conn, since=ask.live_since)
        busy = await broker.busy_count(conn, now=ask.now)
        since = tuple(await queue_lanes.busy_since(conn, ask.now))
    measured = await runs_db.recent_average_ms(conn, run.revision_id, sample=RECENT_RUNS)
    estimated = None
    if measured is None:
        revision = await workflows_db.find_revision(conn, run.revision_id)
        estimated = None if revision is None else revision.prices["estimated_seconds"]
    running = await quotas.running_count(conn, run.account_id) if ask.count_running else None
    return Waiting(
        place.lane, place.place, instances, slots, busy, since, measured, estimated, running
    )


async def _instance_loads(conn: Connection, kind: str) -> tuple[InstanceLoad, ...]:
    instances = [i for i in await instances_db.list_instances(conn) if i.kind == kind]
    started = await runs_db.running_since_by_instance(conn, [i.id for i in instances])
    return tuple(
        InstanceLoad(
            i.id,
            i.kind,
            i.labels,
            i.state,
            i.healthy,
            i.capacity,
            i.busy,
            tuple(started.get(i.id, [])),
        )
        for i in instances
    )


# ---- PostgreSQL: one statement --------------------------------------------------------------

_STATEMENTS: dict[bool, Any] = {}
"""The statement by ``count_running``: building it costs more CPU than running it."""
_EVENT_FIELDS = [c.name for c in events_table.c]


def _decode_events(row: Any) -> list[RunEvent]:
    """The events' arrays (NULL when the run has none) as records."""
    columns = [row[f"event_{name}"] or [] for name in _EVENT_FIELDS]
    return [
        record(RunEvent, dict(zip(_EVENT_FIELDS, values, strict=True)))
        for values in zip(*columns, strict=True)
    ]


def _decode_waiting(row: Any) -> Waiting:
    instances = tuple(
        InstanceLoad(
            i["id"],
            i["kind"],
            i["labels"],
            i["state"],
            i["healthy"],
            i["capacity"],
            i["busy"],
            _times(i["started"]),
        )
        for i in row["waiting_instances"] or []
    )
    measured = row["waiting_measured_ms"]
    estimated = None if measured is not None else row["waiting_estimated_seconds"]
    return Waiting(
        row["waiting_lane"],
        int(row["waiting_ahead"]) + 1,
        instances,
        int(row["waiting_worker_slots"] or 0),
        int(row["waiting_worker_busy"] or 0),
        tuple(row["waiting_busy_since"] or ()),
        None if measured is None else int(measured),
        estimated,
        row["waiting_running"],
    )


def _times(values: list[str] | None) -> tuple[datetime, ...]:
    """Timestamps as JSON gives them (ISO 8601 with an offset), as aware UTC datetimes."""
    return tuple(datetime.fromisoformat(v).astimezone(UTC) for v in values or [])


def _statement(count_running: bool) -> Any:
    """The statement (module doc), its values bound at execution: ``run_id``,
    ``account_id``, ``now``, ``live_since``."""
    run_id = bindparam("run_id", type_=runs_table.c.id.type)
    account_id = bindparam("account_id", type_=runs_table.c.account_id.type)
    run = (
        select(runs_table)
        .where(runs_table.c.id == run_id, runs_table.c.account_id == account_id)
        .cte("run")
    )
    mine = (
        select(jobs.c.lane, *QUEUE_ORDER, run.c.revision_id, run.c.account_id)
        .select_from(jobs.join(run, run.c.id == jobs.c.run_id))
        .where(jobs.c.run_id == run_id, jobs.c.status == JobStatus.TODO)
        .where(run.c.status == RunStatus.QUEUED)
        .cte("mine")
    )
    events = _events(run_id)
    waiting = _waiting_facts(mine, count_running)
    return (
        select(run, *events.c, *waiting.c)
        .select_from(run.join(events, true()))
        .outerjoin(waiting, true())
    )


def _events(run_id: Any) -> Any:
    """The run's latest log lines, one array a column, oldest first (one row)."""
    latest = (
        select(events_table)
        .where(events_table.c.run_id == run_id)
        .order_by(events_table.c.id.desc())
        .limit(EVENT_LIMIT)
        .subquery("latest")
    )
    arrays = [
        func.array_agg(aggregate_order_by(latest.c[name], latest.c.id)).label(f"event_{name}")
        for name in _EVENT_FIELDS
    ]
    return select(*arrays).select_from(latest).subquery("events")


def _waiting_facts(mine: Any, count_running: bool) -> Any:
    """Per row of ``mine``: the place and every fact ``queue_info`` needs (module doc)."""
    now = bindparam("now", type_=UTCDateTime())
    kind = func.split_part(mine.c.lane, " ", 1)
    worker_lane = kind.not_in(sorted(INSTANCE_KINDS))
    ahead = queue_lanes.ahead_of(mine.c.lane, mine.c.fair_round, mine.c.created_at, mine.c.id)
    slots = select(func.coalesce(func.sum(workers.c.concurrency), 0)).where(
        workers.c.heartbeat_at >= bindparam("live_since", type_=UTCDateTime()), worker_lane
    )
    busy = select(func.count()).where(
        jobs.c.status == JobStatus.DOING, jobs.c.lease_until >= now, worker_lane
    )
    since = queue_lanes.busy_since_query(now).where(worker_lane).correlate(mine).subquery()
    recent = runs_db.recent_successes(mine.c.revision_id, sample=RECENT_RUNS)
    recent_ms = recent.correlate(mine).subquery("recent").c.execution_ms
    estimate = revisions.c.prices["estimated_seconds"]
    columns = {
        "lane": mine.c.lane,
        "ahead": ahead.scalar_subquery(),
        "instances": _instances(kind).scalar_subquery(),
        "worker_slots": slots.scalar_subquery(),
        "worker_busy": busy.scalar_subquery(),
        "busy_since": select(func.array_agg(since.c.started_at)).scalar_subquery(),
        "measured_ms": select(func.avg(recent_ms)).scalar_subquery(),
        "estimated_seconds": select(estimate)
        .where(revisions.c.id == mine.c.revision_id)
        .scalar_subquery(),
        "running": _running(mine).scalar_subquery() if count_running else null(),
    }
    labelled = [value.label(f"waiting_{name}") for name, value in columns.items()]
    return select(*labelled).select_from(mine).subquery("waiting")


def _instances(kind: Any) -> Any:
    """The instances of the lane's kind as a JSON array: each with its load and its runs'
    start times (``db.instances.list_instances`` and ``db.runs.running_since_by_instance``)."""
    on_it = (
        runs_table.c.instance_id == engine_instances.c.id,
        runs_table.c.status == RunStatus.RUNNING,
    )
    started = select(func.json_agg(runs_table.c.started_at)).where(
        *on_it, runs_table.c.started_at.is_not(None)
    )
    fields = {
        "id": engine_instances.c.id,
        "kind": engine_instances.c.kind,
        "labels": engine_instances.c.labels,
        "state": engine_instances.c.state,
        "healthy": engine_instances.c.healthy,
        "capacity": engine_instances.c.capacity,
        "busy": select(func.count()).where(*on_it).scalar_subquery(),
        "started": started.scalar_subquery(),
    }
    pairs = [
        part for name, value in fields.items() for part in (literal_column(f"'{name}'"), value)
    ]
    return select(func.json_agg(func.json_build_object(*pairs), type_=Json)).where(
        engine_instances.c.kind == kind
    )


def _running(mine: Any) -> Any:
    """The account's runs in service (``quotas.running_count``)."""
    return select(func.count()).where(
        jobs.c.account_id == mine.c.account_id, jobs.c.status.in_(quotas.RUNNING)
    )
