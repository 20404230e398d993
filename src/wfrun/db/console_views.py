"""Read-only views across accounts for the console's operator pages: the queue by lane and
failing webhook deliveries. Callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import RowMapping, case, func, select

from wfrun.db.database import Connection
from wfrun.db.rows import records
from wfrun.db.schema import jobs
from wfrun.db.webhook_deliveries import Delivery
from wfrun.db.webhook_schema import webhook_deliveries


@dataclass(frozen=True, slots=True)
class LaneLoad:
    """Jobs waiting (``todo``) and running (``doing``) in one lane."""

    lane: str
    waiting: int
    running: int
    oldest_waiting: datetime | None


async def lane_loads(conn: Connection) -> list[LaneLoad]:
    """Each lane with active jobs: how many wait, how many run, and the oldest waiting job's
    creation time."""
    waiting = func.sum(case((jobs.c.status == "todo", 1), else_=0))
    running = func.sum(case((jobs.c.status == "doing", 1), else_=0))
    oldest = func.min(case((jobs.c.status == "todo", jobs.c.created_at), else_=None))
    query = (
        select(
            jobs.c.lane,
            waiting.label("waiting"),
            running.label("running"),
            oldest.label("oldest_waiting"),
        )
        .where(jobs.c.status.in_(("todo", "doing")))
        .group_by(jobs.c.lane)
        .order_by(jobs.c.lane)
    )
    rows = (await conn.execute(query)).mappings()
    return [
        LaneLoad(str(r["lane"]), int(r["waiting"] or 0), int(r["running"] or 0), _aware(r))
        for r in rows
    ]


def _aware(row: RowMapping) -> datetime | None:
    """``min(CASE …)`` loses the column type: SQLite answers a naive text timestamp."""
    value: datetime | str | None = row["oldest_waiting"]
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def failing_deliveries(conn: Connection, *, limit: int) -> list[Delivery]:
    """Webhook deliveries that failed for good or whose last attempt failed, newest first."""
    query = (
        select(webhook_deliveries)
        .where(
            (webhook_deliveries.c.status == "failed")
            | (
                webhook_deliveries.c.last_error.is_not(None)
                & (webhook_deliveries.c.status != "succeeded")
            )
        )
        .order_by(webhook_deliveries.c.updated_at.desc())
        .limit(limit)
    )
    return records(Delivery, (await conn.execute(query)).mappings())
