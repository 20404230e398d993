"""One migration history that matches the schema on both dialects."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from wfrun.db.database import Database
from wfrun.db.migrate import alembic_config, current_revision, head_revision, upgrade
from wfrun.db.schema import metadata


def test_single_head():
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _down_and_up(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "base")
    command.upgrade(alembic_config(connection), "head")


async def test_migrations_match_the_schema(database_url):
    db = Database(database_url)
    try:
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        async with db.transaction() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


async def test_downgrade_then_upgrade_round_trip(database_url):
    db = Database(database_url)
    try:
        async with db.transaction(write=True) as conn:
            await conn.run_sync(_down_and_up)
        async with db.transaction() as conn:
            assert await conn.run_sync(_diff) == []
        await upgrade(db)  # idempotent at head
    finally:
        await db.dispose()
