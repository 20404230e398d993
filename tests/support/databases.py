"""Real databases for tests: a migrated SQLite template copied per test, and one PostgreSQL
database per test session (truncated between tests).

PostgreSQL is required in CI (``CI`` set): its absence fails the run. Locally, tests on
PostgreSQL skip with a visible reason only when no server answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from wfrun.db.database import Database
from wfrun.db.migrate import upgrade
from wfrun.db.schema import metadata

PG_ADMIN_DSN = os.environ.get("WFRUN_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def require_postgres() -> None:
    """Skip (locally) or fail (in CI) when PostgreSQL does not answer."""
    problem = asyncio.run(_pg_reachable())
    if problem is None:
        return
    message = f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {problem}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run every PostgreSQL test)")
    pytest.skip(message)


async def create_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    db = Database(pg_url(name))
    await upgrade(db)
    await db.dispose()


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def truncate_all(db: Database) -> None:
    """Empty every table (keeping the schema and its migration version)."""
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    async with db.transaction(write=True) as conn:
        if db.is_sqlite:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))
        else:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


async def make_sqlite_template(path: Path) -> None:
    db = Database(f"sqlite:///{path}")
    await upgrade(db)
    await db.dispose()


def copy_sqlite(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"
