"""Per-account limit overrides (``account_limits``) and the API keys' shared request counters
(``rate_counters``), on :data:`wfrun.db.schema.metadata`. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import Id, UTCDateTime, metadata

account_limits = Table(
    "account_limits",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("requests_per_second", Float, nullable=True),
    Column("burst", Integer, nullable=True),
    Column("max_queued_runs", Integer, nullable=True),
    Column("max_running_runs", Integer, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)
"""An operator's overrides of ``limits.*`` for one account; a NULL column keeps the default."""

rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key_id", Id, primary_key=True),
    Column("consumed", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
"""Requests each API key made so far, summed over every API process (only ever added to)."""

LIMIT_FIELDS = ("requests_per_second", "burst", "max_queued_runs", "max_running_runs")


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """One row of ``account_limits``."""

    account_id: str
    requests_per_second: float | None
    burst: int | None
    max_queued_runs: int | None
    max_running_runs: int | None
    updated_at: datetime


async def list_overrides(conn: Connection) -> list[AccountLimits]:
    """Every account's overrides."""
    return records(AccountLimits, (await conn.execute(select(account_limits))).mappings())


async def find_overrides(conn: Connection, account_id: str) -> AccountLimits | None:
    query = select(account_limits).where(account_limits.c.account_id == account_id)
    return record_or_none(AccountLimits, (await conn.execute(query)).mappings().first())


async def save_overrides(
    conn: Connection, account_id: str, values: Mapping[str, Any], now: datetime
) -> None:
    """Set the given override columns (others keep their value; a new row has NULLs)."""
    changes = dict(values) | {"updated_at": now}
    stmt = _insert(conn).values(account_id=account_id, **changes)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["account_id"], set_=changes))


async def delete_overrides(conn: Connection, account_id: str) -> None:
    await conn.execute(delete(account_limits).where(account_limits.c.account_id == account_id))


async def add_consumption(
    conn: Connection, deltas: Mapping[str, int], now: datetime
) -> dict[str, int]:
    """Add each key's new requests to its counter; every counter's total after (one
    statement). Rows go in key order: processes adding the same keys lock them in one order
    (in the order each met them, two exchanges at once could deadlock)."""
    rows = [{"key_id": k, "consumed": n, "updated_at": now} for k, n in sorted(deltas.items())]
    stmt = _insert(conn, rate_counters).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key_id"],
        set_={"consumed": rate_counters.c.consumed + stmt.excluded.consumed, "updated_at": now},
    ).returning(rate_counters.c.key_id, rate_counters.c.consumed)
    return {key: int(total) for key, total in (await conn.execute(stmt)).all()}


async def read_consumption(conn: Connection, key_ids: Collection[str]) -> dict[str, int]:
    """The counters of ``key_ids`` (a key never counted is absent)."""
    query = select(rate_counters.c.key_id, rate_counters.c.consumed).where(
        rate_counters.c.key_id.in_(list(key_ids))
    )
    return {key: int(total) for key, total in (await conn.execute(query)).all()}


def _insert(conn: Connection, table: Table = account_limits) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)
