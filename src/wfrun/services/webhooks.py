"""Webhook endpoints of an account, its default secret, and per-run callback URLs.

An account sees and changes only its own endpoints (another's is "not found"). A secret is
answered once, when made (create, rotate, first read of the default secret); afterwards only
its sealed form is kept (``services.webhook_secrets``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from wfrun import ids
from wfrun.clock import utcnow
from wfrun.db import webhook_deliveries as deliveries_db
from wfrun.db import webhook_endpoints as endpoints_db
from wfrun.db.database import Connection, Database
from wfrun.db.webhook_endpoints import Endpoint
from wfrun.domain import webhooks
from wfrun.errors import InvalidParameter, WebhookEndpointNotFound
from wfrun.fetch import FetchPolicy, FetchRefused
from wfrun.fetch.sender import check_url
from wfrun.services.webhook_secrets import SecretBox

ROTATION_OVERLAP = timedelta(hours=24)
"""After a rotation the old secret still signs (beside the new one) this long."""


@dataclass(frozen=True)
class EndpointChange:
    """What ``update`` may change; None leaves a field as it is."""

    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


def check_receiver(field: str, url: str, policy: FetchPolicy) -> str:
    """A receiver URL the address policy allows, or a 400 naming ``field``."""
    try:
        check_url(url, policy)
    except FetchRefused as exc:
        raise InvalidParameter(f"{field}: {exc.detail}") from exc
    return url


async def create(
    db: Database,
    box: SecretBox,
    policy: FetchPolicy,
    account_id: str,
    change: EndpointChange,
) -> tuple[Endpoint, str]:
    """A new enabled endpoint and its secret (answered this once)."""
    url = check_receiver("url", change.url or "", policy)
    events = webhooks.check_events(change.events or webhooks.DEFAULT_EVENTS)
    secret, now = webhooks.new_secret(), utcnow()
    values = {
        "id": ids.new_webhook_endpoint_id(),
        "account_id": account_id,
        "url": url,
        "events": events,
        "description": change.description or "",
        "secret": box.seal(secret),
        "enabled": True,
        "created_at": now,
        "updated_at": now,
    }
    async with db.transaction(write=True) as conn:
        await endpoints_db.insert_endpoint(conn, values)
        return await _get(conn, account_id, str(values["id"])), secret


async def list_all(db: Database, account_id: str) -> list[Endpoint]:
    async with db.transaction() as conn:
        return await endpoints_db.list_endpoints(conn, account_id)


async def update(
    db: Database, policy: FetchPolicy, account_id: str, endpoint_id: str, change: EndpointChange
) -> Endpoint:
    """Change fields; enabling (the default of an update) clears a disabled endpoint's
    failing streak, so it gets deliveries again."""
    values: dict[str, object] = {"updated_at": utcnow()}
    if change.url is not None:
        values["url"] = check_receiver("url", change.url, policy)
    if change.events is not None:
        values["events"] = webhooks.check_events(change.events)
    if change.description is not None:
        values["description"] = change.description
    if change.enabled is not False:
        values.update(enabled=True, disabled_reason=None, failing_since=None)
    else:
        values.update(enabled=False, disabled_reason="disabled by its owner")
    async with db.transaction(write=True) as conn:
        await _get(conn, account_id, endpoint_id)
        await endpoints_db.update_endpoint(conn, endpoint_id, values)
        return await _get(conn, account_id, endpoint_id)


async def delete(db: Database, account_id: str, endpoint_id: str) -> Endpoint:
    """Soft delete: its deliveries stay in the log; those not sent yet end as failed."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        endpoint = await _get(conn, account_id, endpoint_id)
        await endpoints_db.update_endpoint(conn, endpoint_id, {"deleted_at": now, "enabled": False})
        await deliveries_db.fail_pending(conn, endpoint_id, "endpoint deleted", now)
    return replace(endpoint, deleted_at=now, enabled=False)


async def rotate(
    db: Database, box: SecretBox, account_id: str, endpoint_id: str
) -> tuple[Endpoint, str]:
    """A new secret (answered once); the current one keeps signing for 24 h."""
    secret, now = webhooks.new_secret(), utcnow()
    async with db.transaction(write=True) as conn:
        endpoint = await _get(conn, account_id, endpoint_id)
        values = {
            "secret": box.seal(secret),
            "previous_secret": endpoint.secret,
            "previous_secret_until": now + ROTATION_OVERLAP,
            "updated_at": now,
        }
        await endpoints_db.update_endpoint(conn, endpoint_id, values)
        return await _get(conn, account_id, endpoint_id), secret


async def default_secret(db: Database, box: SecretBox, account_id: str) -> str:
    """The account's default secret (signs ``callback_url`` deliveries), made on first use."""
    async with db.transaction(write=True) as conn:
        return await default_secret_in(conn, box, account_id)


async def default_secret_in(conn: Connection, box: SecretBox, account_id: str) -> str:
    sealed = await endpoints_db.default_secret(conn, account_id)
    if sealed is None:
        fresh = box.seal(webhooks.new_secret())
        await endpoints_db.insert_default_secret(conn, account_id, fresh, utcnow())
        sealed = await endpoints_db.default_secret(conn, account_id)
    assert sealed is not None, "written in this transaction or by a racing one that committed"
    return box.open(sealed)


async def _get(conn: Connection, account_id: str, endpoint_id: str) -> Endpoint:
    endpoint = await endpoints_db.get_endpoint(conn, account_id, endpoint_id)
    if endpoint is None:
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint
