"""The aggregate queries behind ``/metrics`` (``wfrun.metrics.database``): a few cheap
``GROUP BY``/``SUM`` reads run once per scrape. Callers own the (read) transaction.

Costs: runs by status and engine scan the runs (grouped by revision, then mapped to the
revision's engine kind); the queue reads waiting jobs through ``ix_jobs_lane``; instances are
few; the money totals sum the open freezes and the revenue postings. Scrape every 15-60 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from wfrun.db.database import Connection
from wfrun.db.instances import list_instances
from wfrun.db.schema import freezes, jobs, ledger_postings, revisions, runs

OPEN_FREEZE = "frozen"
REVENUE_BUCKET = "revenue"
WAITING_JOB = "todo"


@dataclass(frozen=True, slots=True)
class RunCount:
    """How many runs are in ``status`` on engines of ``engine`` kind."""

    status: str
    engine: str
    count: int


@dataclass(frozen=True, slots=True)
class LaneDepth:
    """The jobs waiting in one lane and when the oldest of them was enqueued."""

    lane: str
    depth: int
    oldest_created_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceLoad:
    """An engine instance's health and the runs running on it."""

    id: str
    kind: str
    healthy: bool
    state: str
    capacity: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class MoneyTotals:
    """Integer minor units (1e-8 CNY): what open freezes hold, what settling has charged."""

    frozen: int
    settled: int


async def run_counts(conn: Connection) -> list[RunCount]:
    """Runs by status and engine kind (every run ever, so the terminal counts only grow)."""
    query = (
        select(runs.c.status, revisions.c.engine_kind, func.count().label("n"))
        .join(revisions, revisions.c.id == runs.c.revision_id)
        .group_by(runs.c.status, revisions.c.engine_kind)
        .order_by(runs.c.status, revisions.c.engine_kind)
    )
    rows = (await conn.execute(query)).all()
    return [RunCount(status, engine, int(n)) for status, engine, n in rows]


async def lane_depths(conn: Connection) -> list[LaneDepth]:
    """Waiting jobs per lane (lanes without any are absent)."""
    query = (
        select(jobs.c.lane, func.count().label("n"), func.min(jobs.c.created_at).label("oldest"))
        .where(jobs.c.status == WAITING_JOB)
        .group_by(jobs.c.lane)
        .order_by(jobs.c.lane)
    )
    rows = (await conn.execute(query)).all()
    return [LaneDepth(lane, int(n), oldest) for lane, n, oldest in rows]


async def instance_loads(conn: Connection) -> list[InstanceLoad]:
    return [
        InstanceLoad(i.id, i.kind, i.healthy, i.state, i.capacity, i.busy)
        for i in await list_instances(conn)
    ]


async def money_totals(conn: Connection) -> MoneyTotals:
    frozen = select(func.coalesce(func.sum(freezes.c.amount), 0)).where(
        freezes.c.status == OPEN_FREEZE
    )
    settled = select(func.coalesce(func.sum(ledger_postings.c.amount), 0)).where(
        ledger_postings.c.bucket == REVENUE_BUCKET
    )
    return MoneyTotals(
        frozen=int((await conn.execute(frozen)).scalar_one()),
        settled=int((await conn.execute(settled)).scalar_one()),
    )
