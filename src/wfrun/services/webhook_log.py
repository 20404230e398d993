"""The delivery log an account reads (``GET /webhooks/deliveries``) and resends from."""

from __future__ import annotations

from dataclasses import dataclass

from wfrun.clock import utcnow
from wfrun.db import webhook_deliveries as deliveries_db
from wfrun.db import webhook_endpoints as endpoints_db
from wfrun.db.database import Database
from wfrun.db.webhook_deliveries import Attempt, Delivery
from wfrun.errors import WebhookDeliveryNotFound, WebhookEndpointNotFound


@dataclass(frozen=True)
class LoggedDelivery:
    delivery: Delivery
    attempts: list[Attempt]


async def page(
    db: Database,
    account_id: str,
    *,
    endpoint_id: str | None,
    run_id: str | None,
    page_no: int,
    size: int,
) -> tuple[list[LoggedDelivery], int]:
    """The account's deliveries, newest first, with every attempt; another account's
    endpoint is not found."""
    async with db.transaction() as conn:
        known = endpoint_id is None or await endpoints_db.get_endpoint(
            conn, account_id, endpoint_id
        )
        if not known:
            raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} not found")
        items, total = await deliveries_db.page(
            conn,
            account_id,
            endpoint_id=endpoint_id,
            run_id=run_id,
            offset=(page_no - 1) * size,
            limit=size,
        )
        attempts = await deliveries_db.attempts_of(conn, [d.id for d in items])
    return [LoggedDelivery(d, attempts[d.id]) for d in items], total


async def resend(db: Database, account_id: str, delivery_id: str) -> LoggedDelivery:
    """Send the delivery again, now, with the same ``webhook-id`` and body."""
    async with db.transaction(write=True) as conn:
        if await deliveries_db.get(conn, account_id, delivery_id) is None:
            raise WebhookDeliveryNotFound(f"webhook delivery {delivery_id} not found")
        await deliveries_db.resend(conn, delivery_id, utcnow())
        delivery = await deliveries_db.get(conn, account_id, delivery_id)
        assert delivery is not None
        attempts = await deliveries_db.attempts_of(conn, [delivery_id])
    return LoggedDelivery(delivery, attempts[delivery_id])
