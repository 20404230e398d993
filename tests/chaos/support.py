"""Outages on demand, for the tests of this package and of ``tests/workers``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from wfrun.db.database import Database


@asynccontextmanager
async def pragmas(db: Database, *statements: str) -> AsyncIterator[None]:
    """Run ``statements`` on every new pooled SQLite connection while inside the block (the
    pool is emptied on entry and exit, so every transaction sees them; nothing may hold a
    connection at either moment, or it is dropped unclosed)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        for statement in statements:
            dbapi_connection.execute(statement)

    event.listen(db.engine.sync_engine, "connect", on_connect)
    await db.engine.dispose()
    try:
        yield
    finally:
        event.remove(db.engine.sync_engine, "connect", on_connect)
        await db.engine.dispose()


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another process's view of SQLite: a connection holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@asynccontextmanager
async def write_locked_from_a_thread(path: Path) -> AsyncIterator[None]:
    """:func:`write_locked` for a test whose event loop also runs the code under test (a
    worker, a server): the lock is taken in a thread, so a write transaction of that code which
    holds it meanwhile can finish (taken on the loop, the wait would block the very code that
    must release it)."""

    def lock() -> sqlite3.Connection:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        other.execute("BEGIN IMMEDIATE")
        return other

    other = await asyncio.to_thread(lock)
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()
