"""Reading the run stream (``run_stream``): every run's status changes and log lines in one
order, the rows the live event stream sends. Database triggers append the rows (migration
0009 says why: ids then become visible in increasing order on both dialects); nothing here
writes them.

:func:`note_change` marks a transaction as having written something the stream shows, so
that its commit wakes this process's waiters at once (:attr:`Database.commit_hooks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select

from wfrun.db.database import Connection, note_change
from wfrun.db.rows import records
from wfrun.db.schema import outbox_events, run_events, run_stream

__all__ = ["StreamItem", "changed_since", "note_change", "read_after"]


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One stream row with its source: a change (``source == "change"``: the ``change_*``
    fields and ``status`` are set) or a log line (``source == "log"``: the log fields)."""

    id: int
    run_id: str
    source: str
    source_id: int
    change_type: str | None
    status: str | None
    previous_status: str | None
    change_attempt: int | None
    changed_at: datetime | None
    log_type: str | None
    level: str | None
    message: str | None
    node_id: str | None
    progress_percent: int | None
    logged_at: datetime | None


async def read_after(
    conn: Connection, *, account_id: str, run_id: str | None, after: int, limit: int
) -> list[StreamItem]:
    """The account's (or only ``run_id``'s) stream rows with ``id > after``, oldest first, at
    most ``limit`` of them (callers read in pages: memory stays bounded)."""
    s, o, e = run_stream.c, outbox_events.c, run_events.c
    query = (
        select(
            s.id,
            s.run_id,
            s.source,
            s.source_id,
            o.event_type.label("change_type"),
            o.status,
            o.previous_status,
            o.attempt.label("change_attempt"),
            o.created_at.label("changed_at"),
            e.event_type.label("log_type"),
            e.level,
            e.message,
            e.node_id,
            e.progress_percent,
            e.at.label("logged_at"),
        )
        .select_from(
            run_stream.outerjoin(
                outbox_events, and_(s.source == "change", o.id == s.source_id)
            ).outerjoin(run_events, and_(s.source == "log", e.id == s.source_id))
        )
        .where(s.account_id == account_id, s.id > after)
        .order_by(s.id)
        .limit(limit)
    )
    if run_id is not None:
        query = query.where(s.run_id == run_id)
    return records(StreamItem, (await conn.execute(query)).mappings())


async def changed_since(conn: Connection, after: int) -> tuple[int, frozenset[str]]:
    """The newest row id (``after`` when there is none newer) and the accounts whose rows
    came after ``after`` (what a poller wakes)."""
    newest = (await conn.execute(select(func.max(run_stream.c.id)))).scalar_one()
    if newest is None or newest <= after:
        return after, frozenset()
    query = select(run_stream.c.account_id).where(run_stream.c.id > after).distinct()
    accounts = frozenset((await conn.execute(query)).scalars().all())
    return int(newest), accounts
