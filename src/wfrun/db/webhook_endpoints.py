"""Webhook endpoints, each account's default secret, and per-run callback URLs. Secrets are
stored sealed (``services.webhook_secrets``); nothing here reads them in the clear.
Callers own the transaction; nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict
from wfrun.db.rows import record_or_none, records
from wfrun.db.webhook_schema import run_callbacks, webhook_endpoints, webhook_secrets


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A ``webhook_endpoints`` row (``secret``/``previous_secret`` sealed)."""

    id: str
    account_id: str
    url: str
    events: list[str]
    description: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


async def insert_endpoint(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(webhook_endpoints), values)


def _live(account_id: str) -> Any:
    return (webhook_endpoints.c.account_id == account_id) & webhook_endpoints.c.deleted_at.is_(None)


async def get_endpoint(conn: Connection, account_id: str, endpoint_id: str) -> Endpoint | None:
    """The account's endpoint (never another account's, never a deleted one)."""
    query = select(webhook_endpoints).where(
        _live(account_id), webhook_endpoints.c.id == endpoint_id
    )
    return record_or_none(Endpoint, (await conn.execute(query)).mappings().first())


async def endpoint_by_id(conn: Connection, endpoint_id: str) -> Endpoint | None:
    query = select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    return record_or_none(Endpoint, (await conn.execute(query)).mappings().first())


async def list_endpoints(conn: Connection, account_id: str) -> list[Endpoint]:
    query = (
        select(webhook_endpoints)
        .where(_live(account_id))
        .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    )
    return records(Endpoint, (await conn.execute(query)).mappings())


async def enabled_endpoints(conn: Connection, account_ids: list[str]) -> list[Endpoint]:
    """Live, enabled endpoints of these accounts (the fan-out's targets)."""
    query = select(webhook_endpoints).where(
        webhook_endpoints.c.account_id.in_(account_ids),
        webhook_endpoints.c.deleted_at.is_(None),
        webhook_endpoints.c.enabled.is_(True),
    )
    return records(Endpoint, (await conn.execute(query)).mappings())


async def update_endpoint(conn: Connection, endpoint_id: str, values: dict[str, Any]) -> None:
    await conn.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(values)
    )


async def mark_result(conn: Connection, endpoint_id: str, ok: bool, now: datetime) -> None:
    """A success clears the failing streak; a failure starts one if none is running."""
    table = webhook_endpoints
    if ok:
        values: dict[str, Any] = {"failing_since": None}
    else:
        values = {"failing_since": func.coalesce(table.c.failing_since, now)}
    await conn.execute(update(table).where(table.c.id == endpoint_id).values(values))


async def disable_if_failing_since(
    conn: Connection, endpoint_id: str, before: datetime, reason: str, now: datetime
) -> bool:
    """Disable the endpoint when its failing streak began before ``before``."""
    table = webhook_endpoints
    result = await conn.execute(
        update(table)
        .where(table.c.id == endpoint_id, table.c.enabled.is_(True))
        .where(table.c.failing_since.is_not(None), table.c.failing_since <= before)
        .values(enabled=False, disabled_reason=reason, updated_at=now)
    )
    return bool(result.rowcount)


async def default_secret(conn: Connection, account_id: str) -> str | None:
    query = select(webhook_secrets.c.secret).where(webhook_secrets.c.account_id == account_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else str(value)


async def insert_default_secret(
    conn: Connection, account_id: str, sealed: str, now: datetime
) -> None:
    """Keep the first default secret written for the account (racing writers lose)."""
    statement = insert_ignoring_conflict(conn, webhook_secrets, ["account_id"])
    await conn.execute(statement, {"account_id": account_id, "secret": sealed, "created_at": now})


async def set_callback(conn: Connection, run_id: str, url: str) -> None:
    await conn.execute(insert(run_callbacks), {"run_id": run_id, "url": url})


async def callbacks(conn: Connection, run_ids: list[str]) -> dict[str, str]:
    query = select(run_callbacks).where(run_callbacks.c.run_id.in_(run_ids))
    return {row.run_id: row.url for row in await conn.execute(query)}
