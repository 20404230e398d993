"""Webhook endpoints and deliveries on the wire (open-api-v2.md §7 "Live runs")."""

from __future__ import annotations

from typing import Any

from wfrun.clock import to_rfc3339
from wfrun.db.webhook_deliveries import Attempt
from wfrun.db.webhook_endpoints import Endpoint
from wfrun.services.webhook_log import LoggedDelivery


def endpoint(item: Endpoint, *, secret: str | None = None) -> dict[str, Any]:
    """An endpoint; ``secret`` only in the answer that made it (create, rotate-secret)."""
    data: dict[str, Any] = {
        "endpoint_id": item.id,
        "url": item.url,
        "events": item.events,
        "description": item.description,
        "enabled": item.enabled,
        "disabled_reason": item.disabled_reason,
        "failing_since": to_rfc3339(item.failing_since),
        "previous_secret_expires_at": to_rfc3339(item.previous_secret_until),
        "created_at": to_rfc3339(item.created_at),
        "updated_at": to_rfc3339(item.updated_at),
    }
    if item.deleted_at is not None:
        data["deleted_at"] = to_rfc3339(item.deleted_at)
    if secret is not None:
        data["secret"] = secret
    return data


def attempt(item: Attempt) -> dict[str, Any]:
    return {
        "attempt": item.attempt,
        "started_at": to_rfc3339(item.started_at),
        "http_status": item.status_code,
        "latency_ms": item.latency_ms,
        "response_excerpt": item.response_excerpt,
        "error": item.error,
    }


def delivery(item: LoggedDelivery) -> dict[str, Any]:
    """A delivery with its attempt log; the ``last_*`` fields repeat the latest attempt."""
    d = item.delivery
    return {
        "delivery_id": d.id,
        "webhook_id": d.message_id,
        "endpoint_id": d.endpoint_id,
        "target": "callback" if d.endpoint_id is None else "endpoint",
        "run_order_id": d.run_id,
        "event_type": d.event_type,
        "status": d.status,
        "attempt_count": len(item.attempts),
        "http_status": d.last_status_code,
        "latency_ms": d.last_latency_ms,
        "response_excerpt": item.attempts[-1].response_excerpt if item.attempts else None,
        "error": d.last_error,
        "next_retry_at": to_rfc3339(d.next_attempt_at) if d.status == "pending" else None,
        "delivered_at": to_rfc3339(d.delivered_at),
        "created_at": to_rfc3339(d.created_at),
        "attempts": [attempt(a) for a in item.attempts],
    }
