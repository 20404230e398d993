"""Progress rows for opt-in ``run.progress`` webhooks: ``run_events`` rows carrying a percent,
read past a cursor (``webhook_cursors``). Callers own the transaction; nothing here commits.

A cursor may step over a row whose transaction committed after a later one: for progress that
is harmless (the next progress row, and the run's ending in the outbox, supersede it), which
is why status changes use the outbox's per-row markers instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, select, update

from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict
from wfrun.db.rows import records
from wfrun.db.schema import run_events, runs
from wfrun.db.webhook_schema import webhook_cursors, webhook_deliveries, webhook_endpoints

PROGRESS_CURSOR = "progress"


@dataclass(frozen=True, slots=True)
class ProgressRow:
    id: int
    run_id: str
    account_id: str
    family: str
    at: datetime
    node_id: str | None
    progress_percent: int
    message: str


def _takes_progress() -> ColumnElement[bool]:
    """A live, enabled endpoint that asked for a progress event. Event names are a closed
    vocabulary, so the JSON list is matched as text: ``run.progress`` and
    ``model_run.progress`` both end in ``.progress"`` (JSONB's text and SQLite's alike)."""
    e = webhook_endpoints.c
    return and_(
        e.enabled.is_(True), e.deleted_at.is_(None), cast(e.events, Text).like('%.progress"%')
    )


async def subscribed_accounts(conn: Connection) -> set[str]:
    """Accounts with an endpoint that takes progress events (:func:`_takes_progress`)."""
    query = select(webhook_endpoints.c.account_id).where(_takes_progress()).distinct()
    return {str(account_id) for account_id in (await conn.execute(query)).scalars()}


def position(name: str) -> ColumnElement[int]:
    """A cursor's position as a scalar subquery (0 before its first move)."""
    query = select(webhook_cursors.c.position).where(webhook_cursors.c.name == name)
    return func.coalesce(query.scalar_subquery(), 0)


async def skip_unheard(conn: Connection) -> bool:
    """Moves the progress cursor past every row, in one statement, when no live, enabled
    endpoint takes a progress event (issue 11: the usual case, which read into Python took
    six statements); False when one does, or the cursor has never moved or stands past every
    row (the caller then fans out as usual)."""
    listening = exists().where(_takes_progress())
    latest = select(func.coalesce(func.max(run_events.c.id), 0)).scalar_subquery()
    statement = (
        update(webhook_cursors)
        .where(webhook_cursors.c.name == PROGRESS_CURSOR, ~listening)
        .where(webhook_cursors.c.position <= latest)  # only ever rises
        .values(position=latest)
    )
    return bool((await conn.execute(statement)).rowcount)


async def cursor(conn: Connection, name: str = PROGRESS_CURSOR) -> int | None:
    query = select(webhook_cursors.c.position).where(webhook_cursors.c.name == name)
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else int(value)


async def latest_event_id(conn: Connection) -> int:
    return int((await conn.execute(select(func.max(run_events.c.id)))).scalar_one() or 0)


async def move_cursor(conn: Connection, position: int, name: str = PROGRESS_CURSOR) -> None:
    statement = insert_ignoring_conflict(conn, webhook_cursors, ["name"])
    await conn.execute(statement, {"name": name, "position": position})
    await conn.execute(
        update(webhook_cursors).where(webhook_cursors.c.name == name).values(position=position)
    )


async def progress_after(
    conn: Connection, after: int, accounts: set[str], limit: int
) -> list[ProgressRow]:
    query = (
        select(run_events, runs.c.account_id, runs.c.family)
        .join(runs, runs.c.id == run_events.c.run_id)
        .where(run_events.c.id > after, run_events.c.progress_percent.is_not(None))
        .where(runs.c.account_id.in_(sorted(accounts)))
        .order_by(run_events.c.id)
        .limit(limit)
    )
    return records(ProgressRow, (await conn.execute(query)).mappings())


async def last_progress(conn: Connection, run_ids: list[str]) -> dict[tuple[str, str], datetime]:
    """When each (run, target) last got a progress delivery (the throttle's memory)."""
    d = webhook_deliveries.c
    query = (
        select(d.run_id, d.target, func.max(d.created_at).label("last"))
        .where(d.run_id.in_(run_ids), d.run_event_id.is_not(None))
        .group_by(d.run_id, d.target)
    )
    return {(row.run_id, row.target): row.last for row in await conn.execute(query)}
