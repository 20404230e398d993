"""Per-key spend limits and their per-period counters; the account row read under lock for a
settlement's credit ceiling. Callers own the transaction; nothing here commits.

``key_limits`` holds one row per API key that has a limit (a key without one has no row, so
its submits pay no statement for limits). ``key_spend`` holds what a limited key has frozen
and spent in one period (``period_key``: ``2026-11-30``, ``2026-11`` or ``total``); a submit
reserves its quote on it with one conditional UPDATE, so concurrent submits of one key can
never together pass its limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, bindparam, delete, select, update

from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import Id, Money, UTCDateTime, accounts, metadata

key_limits = Table(
    "key_limits",
    metadata,
    Column("key_id", Id, ForeignKey("api_keys.id"), primary_key=True),
    Column("spend_limit", Money, nullable=False),
    Column("period", String(8), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

key_spend = Table(
    "key_spend",
    metadata,
    Column("key_id", Id, ForeignKey("api_keys.id"), primary_key=True),
    Column("period_key", String(16), primary_key=True),
    Column("frozen", Money, nullable=False),
    Column("spent", Money, nullable=False),
)


@dataclass(frozen=True, slots=True)
class KeyLimit:
    """A ``key_limits`` row: the most a key may spend per period."""

    key_id: str
    spend_limit: int
    period: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class KeySpend:
    """A ``key_spend`` row: a limited key's open freezes and its charges net of refunds in one
    period."""

    key_id: str
    period_key: str
    frozen: int
    spent: int


async def set_limit(conn: Connection, key_id: str, limit: int, period: str, now: datetime) -> None:
    values = {"spend_limit": limit, "period": period, "updated_at": now}
    changed = await conn.execute(update(key_limits).where(key_limits.c.key_id == key_id), values)
    if changed.rowcount == 0:
        await conn.execute(key_limits.insert(), {"key_id": key_id} | values)


async def remove_limit(conn: Connection, key_id: str) -> bool:
    result = await conn.execute(delete(key_limits).where(key_limits.c.key_id == key_id))
    return result.rowcount == 1


async def limits(conn: Connection, key_ids: list[str]) -> list[KeyLimit]:
    query = select(key_limits).where(key_limits.c.key_id.in_(key_ids))
    return records(KeyLimit, (await conn.execute(query)).mappings())


async def get_limit(conn: Connection, key_id: str) -> KeyLimit | None:
    query = select(key_limits).where(key_limits.c.key_id == key_id)
    return record_or_none(KeyLimit, (await conn.execute(query)).mappings().first())


_RESERVE = (
    update(key_spend)
    .where(
        key_spend.c.key_id == bindparam("key"),
        key_spend.c.period_key == bindparam("win"),
        key_spend.c.frozen + key_spend.c.spent + bindparam("amount") <= bindparam("limit"),
    )
    .values(frozen=key_spend.c.frozen + bindparam("amount"))
)


async def try_reserve(conn: Connection, key_id: str, window: str, amount: int, limit: int) -> bool:
    """Add ``amount`` to the key's frozen in ``window`` iff frozen + spent stays within
    ``limit`` (the row is created first when missing; the UPDATE is the decision)."""
    row = {"key_id": key_id, "period_key": window, "frozen": 0, "spent": 0}
    await conn.execute(insert_ignoring_conflict(conn, key_spend, ["key_id", "period_key"]), row)
    params = {"key": key_id, "win": window, "amount": amount, "limit": limit}
    return (await conn.execute(_RESERVE, params)).rowcount == 1


async def lock_spend(conn: Connection, key_id: str, window: str) -> KeySpend | None:
    """The key's counter for ``window``, locked until the transaction ends."""
    query = (
        select(key_spend)
        .where(key_spend.c.key_id == key_id, key_spend.c.period_key == window)
        .with_for_update()
    )
    return record_or_none(KeySpend, (await conn.execute(query)).mappings().first())


async def move_spend(conn: Connection, key_id: str, window: str, frozen: int, spent: int) -> None:
    """A settlement (the run's freeze leaves ``frozen``, its final amount joins ``spent``) or a
    refund (``spent`` lowered: a negative amount)."""
    await conn.execute(
        update(key_spend)
        .where(key_spend.c.key_id == key_id, key_spend.c.period_key == window)
        .values(frozen=key_spend.c.frozen - frozen, spent=key_spend.c.spent + spent)
    )


async def spend_in(conn: Connection, key_ids: list[str], windows: list[str]) -> list[KeySpend]:
    query = select(key_spend).where(
        key_spend.c.key_id.in_(key_ids), key_spend.c.period_key.in_(windows)
    )
    return records(KeySpend, (await conn.execute(query)).mappings())


async def lock_available(conn: Connection, account_id: str) -> int:
    """The account's available balance, its row locked until the transaction ends (the last
    lock a settlement's caps take: job → key counter → account, CONTRIBUTING.md)."""
    query = select(accounts.c.available).where(accounts.c.id == account_id).with_for_update()
    available: int = (await conn.execute(query)).scalar_one()
    return available


async def read_available(conn: Connection, account_id: str) -> int:
    query = select(accounts.c.available).where(accounts.c.id == account_id)
    available: int = (await conn.execute(query)).scalar_one()
    return available
