"""Outages on demand, for the tests of this package and of ``tests/workers``."""

from __future__ import annotations

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
