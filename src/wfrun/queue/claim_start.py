"""Claim a batch of jobs and start their runs in one statement (PostgreSQL): the common case of
a claim.

``services.claims`` decides how a claimed job goes on (a run ended or cancelled while it
waited, past its queue deadline, out of attempts, needing an engine instance, re-dispatched).
Most claims are none of these: a queued run, not cancelled, within its deadline and attempts,
on an engine without instances. For those this statement does the whole start the general
path does — the job's claim, the run's move to ``running``, its ``started`` log line and its
outbox row — for every job of the batch, with data-modifying CTEs, one round trip; for any
other job it only claims (the same ``UPDATE`` as :func:`broker.claim`, with its batch limit)
and returns the run as it was, and the caller goes on as before. SQLite has no
data-modifying CTEs: it uses the general path, one job a claim.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    RowMapping,
    String,
    bindparam,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)

from wfrun.db.database import Connection
from wfrun.db.limits import account_limits
from wfrun.db.rows import record
from wfrun.db.run_ctes import log_line, outbox_row
from wfrun.db.runs import Run
from wfrun.db.schema import UTCDateTime, jobs, run_assets, runs
from wfrun.domain.runs import RunStatus
from wfrun.queue.broker import Job, claim_update

_Shape = tuple[tuple[str, ...], int | None, tuple[str, ...], tuple[tuple[str, str], ...]]
"""What the statement's text depends on: the full lanes, the running-run cap, the instance
kinds and the outbox events by family."""
_STATEMENTS: dict[_Shape, Any] = {}
"""Built statements by what shapes them (full lanes, instance kinds, event names): building
one (its CTEs' ~60 column proxies) cost more CPU than running it."""
_KEPT = 64


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed job and its run: ``started`` when the statement started it (``run`` as
    written), else the run as the claim found it (the caller goes on)."""

    job: Job
    run: Run
    started: bool
    has_assets: bool
    own_running_cap: int | None
    """The account's override of the running-run cap (``account_limits``), if any."""


async def claim_and_start(
    conn: Connection,
    *,
    worker_id: str,
    lease: timedelta,
    now: datetime,
    full_lanes: Collection[str],
    running_cap: int | None,
    instance_kinds: Collection[str],
    started_events: Mapping[str, str],
    limit: int = 1,
) -> list[Claimed]:
    """Claim the next ``limit`` jobs (a batch: ``broker.claim_update``) and start the runs of
    the common case (module doc), in queue order. ``started_events`` names the outbox event
    of a start by run family (``run.started`` …); empty when nothing is claimable."""
    lanes = tuple(sorted(full_lanes))
    key = (lanes, running_cap, tuple(sorted(instance_kinds)), tuple(started_events.items()))
    query = _STATEMENTS.get(key)
    if query is None:
        if len(_STATEMENTS) >= _KEPT:  # full-lane sets come and go
            _STATEMENTS.clear()
        query = _STATEMENTS[key] = _statement(conn, key)
    params = {"claim_worker": worker_id, "claim_until": now + lease, "claim_now": now}
    rows = (await conn.execute(query, params | {"claim_limit": limit})).mappings().all()
    return [_claimed(row) for row in rows]


def _claimed(row: RowMapping) -> Claimed:
    job = record(Job, {c.name: row[f"job_{c.name}"] for c in jobs.c})
    run = record(Run, {c.name: row[c.name] for c in runs.c})
    started, has_assets = bool(row["started"]), bool(row["has_assets"])
    return Claimed(job, run, started, has_assets, row["own_running_cap"])


def _statement(conn: Connection, key: _Shape) -> Any:
    """The statement, its values bound at execution (``claim_worker``, ``claim_until``,
    ``claim_now``, ``claim_limit``)."""
    full_lanes, running_cap, instance_kinds, events = key
    started_events = dict(events)
    now = bindparam("claim_now", type_=UTCDateTime())
    claimed = (
        claim_update(
            conn,
            worker_id=bindparam("claim_worker", type_=jobs.c.worker_id.type),
            until=bindparam("claim_until", type_=UTCDateTime()),
            now=now,
            full_lanes=full_lanes,
            running_cap=running_cap,
            limit=bindparam("claim_limit", type_=Integer()),
        )
        .returning(*jobs.c)
        .cte("claimed")
    )
    started = _start(claimed, now, instance_kinds).cte("started")
    message = literal("started (attempt ") + cast(started.c.attempt, String) + literal(")")
    logged = log_line(started, now=now, event_type="started", message=message).cte("logged")
    previous = RunStatus.QUEUED.value
    published = outbox_row(started, now=now, previous=previous, event_types=started_events)
    return _claimed_and_run(claimed, started).add_cte(logged, published.cte("published"))


def _claimed_and_run(claimed: Any, started: Any) -> Any:
    """The claimed job, its run (as started, else as the claim found it: the statement's
    snapshot of ``runs``), whether it started and whether it has assets."""
    has_assets = exists().where(run_assets.c.run_id == claimed.c.run_id)
    own_cap = select(account_limits.c.max_running_runs).where(
        account_limits.c.account_id == claimed.c.account_id
    )
    run_columns = [func.coalesce(started.c[c.name], c).label(c.name) for c in runs.c]
    return (
        select(
            *[claimed.c[c.name].label(f"job_{c.name}") for c in jobs.c],
            *run_columns,
            started.c.id.is_not(None).label("started"),
            has_assets.label("has_assets"),
            own_cap.scalar_subquery().label("own_running_cap"),
        )
        .select_from(claimed.join(runs, runs.c.id == claimed.c.run_id))
        .outerjoin(started, started.c.id == claimed.c.run_id)
        .order_by(claimed.c.fair_round, claimed.c.created_at, claimed.c.id)
    )


def _start(claimed: Any, now: Any, instance_kinds: Collection[str]) -> Any:
    """Move the claimed job's run to ``running`` when nothing else needs deciding."""
    engine = func.split_part(claimed.c.lane, " ", 1)
    return (
        update(runs)
        .where(
            runs.c.id == claimed.c.run_id,
            runs.c.status == RunStatus.QUEUED,
            runs.c.cancel_requested_at.is_(None),
            claimed.c.attempts <= claimed.c.max_attempts,
            or_(claimed.c.start_by.is_(None), claimed.c.start_by > now),
            engine.not_in(list(instance_kinds)),
        )
        .values(
            status=RunStatus.RUNNING,
            attempt=claimed.c.attempts,
            started_at=now,
            updated_at=now,
            progress_percent=0,
        )
        .returning(*runs.c)
    )
