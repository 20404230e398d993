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

from sqlalchemy import Select, and_, exists, func, insert, or_, select, update

from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict, skip_locked
from wfrun.db.outbox import OutboxEvent
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import outbox_events
from wfrun.db.webhook_progress import cursor, move_cursor
from wfrun.db.webhook_schema import (
    webhook_attempts,
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
    after = await cursor(conn, LOW_WATER) or 0
    query = (
        select(outbox_events)
        .outerjoin(webhook_fanouts, webhook_fanouts.c.outbox_event_id == outbox_events.c.id)
        .where(outbox_events.c.id > after, webhook_fanouts.c.outbox_event_id.is_(None))
        .order_by(outbox_events.c.id)
        .limit(limit)
    )
    return records(OutboxEvent, (await conn.execute(query)).mappings())


async def advance_low_water(conn: Connection, settled_before: datetime) -> None:
    """Move the mark below which every outbox row is handled: up to the first unhandled row,
    and never past rows younger than ``settled_before`` (a transaction still open may yet
    commit a row with a lower id than one already handled)."""
    after = await cursor(conn, LOW_WATER) or 0
    o, f = outbox_events.c, webhook_fanouts.c
    gap = (
        select(func.min(o.id))
        .outerjoin(webhook_fanouts, f.outbox_event_id == o.id)
        .where(o.id > after, f.outbox_event_id.is_(None))
    )
    old = select(func.max(o.id)).where(o.id > after, o.created_at < settled_before)
    first_gap = (await conn.execute(gap)).scalar_one_or_none()
    last_old = (await conn.execute(old)).scalar_one_or_none()
    if last_old is None:
        return
    mark = int(last_old) if first_gap is None else min(int(last_old), int(first_gap) - 1)
    if mark > after:
        await move_cursor(conn, mark, LOW_WATER)


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
