"""Webhook deliveries: the fan-out from the outbox, claims under a lease, and the log of
every attempt. Callers own the transaction; nothing here commits.

A delivery is ``pending`` (due at ``next_attempt_at``), ``sending`` (claimed until
``lease_until``; a lapsed lease makes it claimable again, so a killed worker's delivery is
sent by another), ``succeeded`` or ``failed`` (its retries spent). ``attempts`` counts claims
and fences the write of an attempt's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, insert, literal, or_, select, update

from wfrun.db.database import Connection
from wfrun.db.dialect import dialect_insert, insert_ignoring_conflict, skip_locked
from wfrun.db.outbox import OutboxEvent
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import outbox_events
from wfrun.db.schema_types import UTCDateTime
from wfrun.db.webhook_progress import position
from wfrun.db.webhook_schema import (
    run_callbacks,
    webhook_attempts,
    webhook_cursors,
    webhook_deliveries,
    webhook_endpoints,
    webhook_fanouts,
)

D = webhook_deliveries.c
LOW_WATER = "outbox"
"""The ``webhook_cursors`` row below which every outbox row has been fanned out."""


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    account_id: str
    run_id: str
    outbox_event_id: int | None
    run_event_id: int | None
    """Progress deliveries come from a ``run_events`` progress row, not from the outbox."""
    target: str
    """``endpoint:<endpoint id>`` or ``callback`` (the run's ``callback_url``)."""
    endpoint_id: str | None
    event_type: str
    message_id: str
    """The ``webhook-id``: the same on every attempt and resend."""
    payload: str
    status: str
    attempts: int
    retry_step: int
    next_attempt_at: datetime
    lease_until: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    delivery_id: str
    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


async def unfanned(conn: Connection, limit: int) -> list[OutboxEvent]:
    """Outbox rows no fan-out has handled yet, oldest first.

    Handled rows are known by marker (``webhook_fanouts``), not by a cursor alone: ids of
    concurrent transactions commit out of order, a cursor would skip one. The low-water mark
    (:func:`advance_low_water`) only bounds the scan."""
    query = (
        select(outbox_events)
        .outerjoin(webhook_fanouts, webhook_fanouts.c.outbox_event_id == outbox_events.c.id)
        .where(outbox_events.c.id > position(LOW_WATER))
        .where(webhook_fanouts.c.outbox_event_id.is_(None))
        .order_by(outbox_events.c.id)
        .limit(limit)
    )
    return records(OutboxEvent, (await conn.execute(query)).mappings())


async def mark_unheard(conn: Connection, now: datetime, limit: int) -> int:
    """Marks handled, in one statement, up to ``limit`` of the unhandled outbox rows nobody
    could hear, oldest first: their account has no live, enabled endpoint and their run no
    ``callback_url``. Answers how many (``limit``: there may be more; a bounded statement holds
    SQLite's write lock briefly even behind a backlog).

    Most rows are such rows on most platforms; reading each into Python to find it had no
    target cost the loop a dozen statements per round (issue 11). Rows of an account with an
    endpoint are left to :func:`unfanned` even when the endpoint does not take their type."""
    o, e = outbox_events.c, webhook_endpoints.c
    endpoint = exists().where(
        e.account_id == o.account_id, e.enabled.is_(True), e.deleted_at.is_(None)
    )
    callback = exists().where(run_callbacks.c.run_id == o.run_id)
    handled = exists().where(webhook_fanouts.c.outbox_event_id == o.id)
    rows = (
        select(o.id, literal(now, UTCDateTime()))
        .where(o.id > position(LOW_WATER), ~handled, ~endpoint, ~callback)
        .order_by(o.id)
        .limit(limit)
    )
    statement = insert_ignoring_conflict(conn, webhook_fanouts, ["outbox_event_id"])
    columns = ["outbox_event_id", "fanned_at"]
    return int((await conn.execute(statement.from_select(columns, rows))).rowcount or 0)


async def advance_low_water(conn: Connection, settled_before: datetime) -> None:
    """Move the mark below which every outbox row is handled: up to the first unhandled row,
    and never past rows younger than ``settled_before`` (a transaction still open may yet
    commit a row with a lower id than one already handled). One statement, and the mark
    only rises (two fan-outs may race)."""
    after = position(LOW_WATER)
    o = outbox_events.c
    handled = exists().where(webhook_fanouts.c.outbox_event_id == o.id)
    gap = select(func.min(o.id)).where(o.id > after, ~handled).scalar_subquery()
    old = select(func.max(o.id)).where(o.id > after, o.created_at < settled_before)
    found = select(gap.label("gap"), old.scalar_subquery().label("old")).subquery()
    mark = case((found.c.gap - 1 < found.c.old, found.c.gap - 1), else_=found.c.old)
    rows = select(literal(LOW_WATER), mark).select_from(found).where(mark > after)
    statement = dialect_insert(conn, webhook_cursors).from_select(["name", "position"], rows)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"position": statement.excluded.position},
            where=statement.excluded.position > webhook_cursors.c.position,
        )
    )


async def insert_deliveries(
    conn: Connection, rows: list[dict[str, Any]], *, source: str = "outbox_event_id"
) -> None:
    """Insert; a delivery already made for the same source row and target stays as it is
    (``source``: ``outbox_event_id``, or ``run_event_id`` for progress)."""
    if rows:
        statement = insert_ignoring_conflict(conn, webhook_deliveries, [source, "target"])
        await conn.execute(statement, rows)


async def mark_fanned(conn: Connection, event_ids: list[int], now: datetime) -> None:
    if event_ids:
        statement = insert_ignoring_conflict(conn, webhook_fanouts, ["outbox_event_id"])
        await conn.execute(statement, [{"outbox_event_id": i, "fanned_at": now} for i in event_ids])


def due_deliveries(now: datetime) -> Select[tuple[str]]:
    """The ids of the deliveries a claim may take now."""
    return select(D.id).where(_due(now))


def _due(now: datetime) -> Any:
    endpoint_live = exists().where(
        webhook_endpoints.c.id == D.endpoint_id,
        webhook_endpoints.c.enabled.is_(True),
        webhook_endpoints.c.deleted_at.is_(None),
    )
    return and_(
        or_(
            and_(D.status == "pending", D.next_attempt_at <= now),
            and_(D.status == "sending", D.lease_until < now),
        ),
        or_(D.endpoint_id.is_(None), endpoint_live),
    )


async def claim_due(
    conn: Connection, now: datetime, lease_until: datetime, limit: int
) -> list[Delivery]:
    """Claim up to ``limit`` due deliveries (SKIP LOCKED on PostgreSQL: claimers never wait
    for each other); each claim counts as an attempt."""
    query = (
        due_deliveries(now)
        .order_by(D.next_attempt_at, D.id)
        .limit(limit)
        .with_for_update(**skip_locked(conn))
    )
    ids_ = list((await conn.execute(query)).scalars().all())
    if not ids_:
        return []
    await conn.execute(
        update(webhook_deliveries)
        .where(D.id.in_(ids_))
        .values(status="sending", lease_until=lease_until, attempts=D.attempts + 1, updated_at=now)
    )
    rows = await conn.execute(select(webhook_deliveries).where(D.id.in_(ids_)).order_by(D.id))
    return records(Delivery, rows.mappings())


async def log_attempt(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(webhook_attempts), values)


async def finish_attempt(
    conn: Connection, delivery_id: str, attempt: int, values: dict[str, Any]
) -> bool:
    """Write an attempt's outcome unless the delivery was claimed again meanwhile."""
    result = await conn.execute(
        update(webhook_deliveries)
        .where(D.id == delivery_id, D.attempts == attempt, D.status == "sending")
        .values(values)
    )
    return bool(result.rowcount)


async def fail_pending(conn: Connection, endpoint_id: str, reason: str, now: datetime) -> None:
    """End the deliveries of an endpoint that will never send them (deleted)."""
    await conn.execute(
        update(webhook_deliveries)
        .where(D.endpoint_id == endpoint_id, D.status.in_(("pending", "sending")))
        .values(status="failed", last_error=reason, lease_until=None, updated_at=now)
    )


async def get(conn: Connection, account_id: str, delivery_id: str) -> Delivery | None:
    query = select(webhook_deliveries).where(D.id == delivery_id, D.account_id == account_id)
    return record_or_none(Delivery, (await conn.execute(query)).mappings().first())


async def resend(conn: Connection, delivery_id: str, now: datetime) -> None:
    """Due again at once, with a fresh retry schedule; the same ``webhook-id``."""
    await conn.execute(
        update(webhook_deliveries)
        .where(D.id == delivery_id)
        .values(
            status="pending", next_attempt_at=now, retry_step=0, lease_until=None, updated_at=now
        )
    )


async def page(
    conn: Connection,
    account_id: str,
    *,
    endpoint_id: str | None,
    run_id: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Delivery], int]:
    """The account's deliveries, newest first, optionally of one endpoint or run."""
    where = [D.account_id == account_id]
    if endpoint_id is not None:
        where.append(D.endpoint_id == endpoint_id)
    if run_id is not None:
        where.append(D.run_id == run_id)
    count = select(func.count()).select_from(webhook_deliveries).where(*where)
    total = (await conn.execute(count)).scalar_one()
    query = (
        select(webhook_deliveries)
        .where(*where)
        .order_by(D.created_at.desc(), D.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return records(Delivery, (await conn.execute(query)).mappings()), int(total)


async def attempts_of(conn: Connection, delivery_ids: list[str]) -> dict[str, list[Attempt]]:
    result: dict[str, list[Attempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_(delivery_ids))
            .order_by(webhook_attempts.c.id)
        )
        for attempt in records(Attempt, (await conn.execute(query)).mappings()):
            result[attempt.delivery_id].append(attempt)
    return result
