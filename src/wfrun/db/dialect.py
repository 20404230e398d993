"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """The connection's dialect's ``INSERT`` (with ``on_conflict_do_nothing`` / ``_update``
    and ``excluded``)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def insert_ignoring_conflict(conn: AsyncConnection, table: Table, columns: list[str]) -> Any:
    """``INSERT … ON CONFLICT (columns) DO NOTHING`` for the connection's dialect."""
    return dialect_insert(conn, table).on_conflict_do_nothing(index_elements=columns)


def skip_locked(conn: AsyncConnection) -> dict[str, Any]:
    """``with_for_update`` arguments: SKIP LOCKED on PostgreSQL; SQLite holds the write lock."""
    if conn.dialect.name == "postgresql":
        return {"skip_locked": True}
    return {}
