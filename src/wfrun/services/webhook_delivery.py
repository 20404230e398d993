"""Webhook delivery: fan the outbox out into deliveries, claim due ones, record each attempt.

The fan-out inserts an outbox row's deliveries and marks the row handled in one transaction
(both idempotent by constraint), so a process killed at any point loses no change and makes no
duplicate. Sending happens outside any transaction (``workers/webhooks.py``); its outcome is
written fenced by the claim, so an attempt that outlived its lease cannot overwrite a newer one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wfrun import ids
from wfrun.clock import to_rfc3339, utcnow
from wfrun.db import runs as runs_db
from wfrun.db import webhook_deliveries as deliveries_db
from wfrun.db import webhook_endpoints as endpoints_db
from wfrun.db import webhook_pending
from wfrun.db.database import Connection, Database
from wfrun.db.outbox import OutboxEvent
from wfrun.db.runs import Run
from wfrun.db.webhook_deliveries import Delivery
from wfrun.db.webhook_endpoints import Endpoint
from wfrun.domain import webhooks
from wfrun.fetch.sender import Sent
from wfrun.services import ops_log
from wfrun.services.webhook_secrets import SecretBox
from wfrun.services.webhooks import default_secret_in

Render = Callable[[Run], dict[str, Any]]
"""A run as its ``run/info`` data (the API's wire view), the ``data`` of a webhook body."""
CALLBACK = "callback"
UNHEARD_BATCH = 1000
"""Outbox rows nobody can hear marked handled in one statement, at most."""
SETTLED = timedelta(minutes=10)
"""Outbox rows older than this are taken as committed or never to be (the low-water mark of
the fan-out only passes them)."""


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery with where it goes and the secrets that sign it."""

    delivery: Delivery
    url: str
    secrets: list[str]


@dataclass(frozen=True)
class RetryPolicy:
    schedule: Sequence[float]
    jitter: float
    disable_after: timedelta


async def pending(db: Database) -> webhook_pending.Pending:
    """Which kinds of webhook work wait: one read, no transaction on PostgreSQL."""
    async with db.read() as conn:
        return await webhook_pending.pending(conn, utcnow())


async def fan_out(
    db: Database, render: Render, *, batch: int = 200, unheard_batch: int = UNHEARD_BATCH
) -> int:
    """Turn up to ``batch`` unhandled outbox rows into deliveries; answers how many rows
    could have had a listener. The rows nobody could hear are marked handled first, up to
    ``unheard_batch`` in one statement (``webhook_deliveries.mark_unheard``), and not counted
    — but a full batch of them answers ``batch``, so that the loop looks again at once behind
    a backlog instead of after its poll interval."""
    now = utcnow()
    async with db.one_statement() as conn:
        unheard = await deliveries_db.mark_unheard(conn, now, unheard_batch)
    if unheard:  # the slow path may not run for a long time: the mark moves on here too
        async with db.one_statement() as conn:
            await deliveries_db.advance_low_water(conn, now - SETTLED)
    if unheard == unheard_batch:
        return batch
    async with db.read() as conn:  # a look without the (SQLite) write lock first
        if not await deliveries_db.unfanned(conn, 1):
            return 0
    async with db.transaction(write=True) as conn:
        events = await deliveries_db.unfanned(conn, batch)
        if not events:
            return 0
        rows = await _deliveries_of(conn, events, render, now)
        await deliveries_db.insert_deliveries(conn, rows)
        await deliveries_db.mark_fanned(conn, [event.id for event in events], now)
        await deliveries_db.advance_low_water(conn, now - SETTLED)
    return len(events)


async def _deliveries_of(
    conn: Connection, events: list[OutboxEvent], render: Render, now: datetime
) -> list[dict[str, Any]]:
    run_ids = sorted({event.run_id for event in events})
    accounts = sorted({event.account_id for event in events})
    endpoints = await endpoints_db.enabled_endpoints(conn, accounts)
    callbacks = await endpoints_db.callbacks(conn, run_ids)
    runs = await runs_db.find_runs(conn, run_ids) if endpoints or callbacks else {}
    rows: list[dict[str, Any]] = []
    for event in events:
        targets = _targets(event, endpoints, event.run_id in callbacks)
        if not targets:
            continue
        payload = body(event.event_type, event.created_at, render(runs[event.run_id]))
        rows.extend(
            delivery_row(event.account_id, event.run_id, event.event_type, payload, now)
            | {"target": target, "endpoint_id": endpoint_id, "outbox_event_id": event.id}
            for target, endpoint_id in targets
        )
    return rows


def _targets(
    event: OutboxEvent, endpoints: list[Endpoint], has_callback: bool
) -> list[tuple[str, str | None]]:
    targets: list[tuple[str, str | None]] = [
        (f"endpoint:{e.id}", e.id)
        for e in endpoints
        if e.account_id == event.account_id and event.event_type in e.events
    ]
    if has_callback and not event.event_type.endswith(".progress"):
        targets.append((CALLBACK, None))
    return targets


def delivery_row(
    account_id: str, run_id: str, event_type: str, payload: str, now: datetime
) -> dict[str, Any]:
    """A new due delivery (the caller adds its target and source row)."""
    return {
        "id": ids.new_webhook_delivery_id(),
        "account_id": account_id,
        "run_id": run_id,
        "event_type": event_type,
        "message_id": ids.new_webhook_message_id(),
        "payload": payload,
        "status": "pending",
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def body(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """The signed body: ``{"type", "timestamp", "data"}``, compact JSON."""
    document = {"type": event_type, "timestamp": to_rfc3339(at), "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


async def claim(db: Database, box: SecretBox, limit: int, lease_seconds: float) -> list[Outgoing]:
    """Claim up to ``limit`` due deliveries, each with its URL and signing secrets."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        claimed = await deliveries_db.claim_due(
            conn, now, now + timedelta(seconds=lease_seconds), limit
        )
        return [await _outgoing(conn, box, delivery, now) for delivery in claimed]


async def _outgoing(
    conn: Connection, box: SecretBox, delivery: Delivery, now: datetime
) -> Outgoing:
    if delivery.endpoint_id is None:
        callbacks = await endpoints_db.callbacks(conn, [delivery.run_id])
        secret = await default_secret_in(conn, box, delivery.account_id)
        return Outgoing(delivery, callbacks[delivery.run_id], [secret])
    endpoint = await endpoints_db.endpoint_by_id(conn, delivery.endpoint_id)
    assert endpoint is not None, "deliveries reference their endpoint"
    secrets = [box.open(endpoint.secret)]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret is not None and until is not None and until > now:
        secrets.append(box.open(endpoint.previous_secret))
    return Outgoing(delivery, endpoint.url, secrets)


async def record(
    db: Database, outgoing: Outgoing, sent: Sent, started: datetime, retry: RetryPolicy
) -> None:
    """Log the attempt and move the delivery on: done, due again later, or failed for good.
    A failing endpoint whose streak outlasts ``retry.disable_after`` is disabled."""
    delivery, now = outgoing.delivery, utcnow()
    outcome = _outcome(delivery, sent, retry, now)
    async with db.transaction(write=True) as conn:
        await deliveries_db.log_attempt(conn, _attempt_row(delivery, sent, started))
        await deliveries_db.finish_attempt(conn, delivery.id, delivery.attempts, outcome)
        if delivery.endpoint_id is not None:
            await _endpoint_health(conn, delivery.endpoint_id, sent.ok, retry, now)
    if not sent.ok:
        error = outcome["last_error"]
        ops_log.webhook_failed(delivery, status_code=sent.status_code, error=error, outcome=outcome)


def _attempt_row(delivery: Delivery, sent: Sent, started: datetime) -> dict[str, Any]:
    return {
        "delivery_id": delivery.id,
        "attempt": delivery.attempts,
        "started_at": started,
        "status_code": sent.status_code,
        "latency_ms": sent.latency_ms,
        "response_excerpt": webhooks.excerpt(sent.body) if sent.status_code else None,
        "error": sent.error,
    }


def _outcome(delivery: Delivery, sent: Sent, retry: RetryPolicy, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "lease_until": None,
        "last_status_code": sent.status_code,
        "last_latency_ms": sent.latency_ms,
        "last_error": sent.error if sent.error else _status_error(sent),
        "updated_at": now,
    }
    if sent.ok:
        return values | {"status": "succeeded", "delivered_at": now}
    wait = webhooks.retry_wait(retry.schedule, delivery.retry_step, retry.jitter, random.Random())
    if wait < 0:
        return values | {"status": "failed"}
    due = now + timedelta(seconds=wait)
    return values | {
        "status": "pending",
        "next_attempt_at": due,
        "retry_step": delivery.retry_step + 1,
    }


def _status_error(sent: Sent) -> str | None:
    return None if sent.ok else f"receiver answered HTTP {sent.status_code}"


async def _endpoint_health(
    conn: Connection, endpoint_id: str, ok: bool, retry: RetryPolicy, now: datetime
) -> None:
    await endpoints_db.mark_result(conn, endpoint_id, ok, now)
    if not ok:
        days = retry.disable_after.total_seconds() / 86400
        reason = f"every delivery failed for {days:g} days"
        await endpoints_db.disable_if_failing_since(
            conn, endpoint_id, now - retry.disable_after, reason, now
        )
