"""Connections and transactions for SQLite (WAL) and PostgreSQL, behind one interface.

Services own transactions: ``async with db.transaction(write=True) as conn: …``; leaving the
block commits, an exception rolls back. ``write=True`` takes SQLite's write lock up front
(``BEGIN IMMEDIATE``) so read-then-write sequences cannot deadlock; on PostgreSQL writers use
row locks or conditional updates inside ordinary READ COMMITTED transactions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from sqlalchemy import event
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_WRITE = "wfrun_write"

Connection: TypeAlias = AsyncConnection
"""An open transaction, as services pass it to ``db/`` and ``queue/`` (which alone speak
SQL); services name this type, never SQLAlchemy's."""


def async_url(url: str) -> str:
    """Map a plain URL to its async driver: sqlite → aiosqlite, postgresql → asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class ConstraintViolated(Exception):
    """A unique, foreign-key or check constraint refused a write; the transaction was rolled
    back. Callers that race on purpose (first writer wins) catch this, not the driver's."""


class Database:
    """One engine per process; hand out short transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.engine: AsyncEngine = _create_engine(self.url, self.dialect, pool_size)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(
        self, *, write: bool = False, foreign_keys: bool = True
    ) -> AsyncIterator[Connection]:
        """A transaction that commits on normal exit and rolls back on an exception.

        ``foreign_keys=False`` (SQLite, migrations only) turns SQLite's foreign-key checks
        off for the transaction; they can only be switched outside one.

        Raises:
            ConstraintViolated: a constraint refused a write (the transaction rolled back).
        """
        try:
            async with self.engine.connect() as conn:
                if write and self.is_sqlite:
                    await conn.execution_options(**{_WRITE: True})
                if not foreign_keys and self.is_sqlite:
                    await conn.run_sync(_sqlite_foreign_keys, False)
                try:
                    async with conn.begin():
                        yield conn
                finally:
                    if not foreign_keys and self.is_sqlite:
                        await conn.run_sync(_sqlite_foreign_keys, True)
        except IntegrityError as exc:
            raise ConstraintViolated(str(exc.orig)) from exc

    async def dispose(self) -> None:
        await self.engine.dispose()


def _create_engine(url: str, dialect: str, pool_size: int) -> AsyncEngine:
    if dialect == "sqlite":
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)
        _install_sqlite_hooks(engine)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """WAL, foreign keys, busy timeout; and our own BEGIN so BEGIN IMMEDIATE is possible."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_foreign_keys(connection: SyncConnection, enabled: bool) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    cursor.close()
