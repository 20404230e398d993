"""Apply the migration history programmatically (on start and by ``wfrun db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from wfrun.db.database import Database

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x77667275  # "wfru": serialises concurrent upgrades on PostgreSQL


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


async def upgrade(db: Database) -> None:
    """Bring the database to the newest revision (idempotent, safe to run concurrently).

    On SQLite, batch migrations rebuild tables (copy, ``DROP``, rename), which foreign keys
    from other tables' rows would refuse; so foreign keys are off for the migration (SQLite
    can only switch them outside a transaction) and checked in full before it commits."""
    if not db.is_sqlite:
        async with db.transaction(write=True) as conn:
            await conn.run_sync(_upgrade)
        return
    async with db.transaction(write=True, foreign_keys=False) as conn:
        await conn.run_sync(_upgrade)
        await conn.run_sync(_check_foreign_keys)


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.transaction() as conn:
        return await conn.run_sync(_current)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
