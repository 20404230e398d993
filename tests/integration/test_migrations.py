"""One migration history that matches the schema on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
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


_POPULATE_0006 = [
    (
        "INSERT INTO accounts (id, display_name, currency, available, frozen, created_at)"
        " VALUES ('acc', 'a', 'CNY', 90, 10, :now)"
    ),
    (
        "INSERT INTO workflows (id, owner_id, slug, title, description, tags, visibility,"
        " created_at, updated_at) VALUES ('wf', 'acc', 's', 't', '', '[]', 'public', :now, :now)"
    ),
    (
        "INSERT INTO revisions (id, workflow_id, number, engine_kind, payload, input_manifest,"
        " output_manifest, prices, timeout_seconds, package, created_at) VALUES ('rev', 'wf', 1,"
        " 'local', '{}', '[]', '[]', '{}', 60, '{}', :now)"
    ),
    (
        "INSERT INTO runs (id, account_id, workflow_id, revision_id, idempotency_key,"
        " request_fingerprint, title, inputs, accept_external_cost_risk, status, quote_amount,"
        " task_id, prompt_id, billing_run_id, freeze_status, error_code, error_status, created_at,"
        " updated_at) VALUES ('run', 'acc', 'wf', 'rev', 'k', 'f', 't', '{}', false, 'failed', 10,"
        " 'task', 'prompt', 'bill', 'frozen', 'ENGINE_TIMEOUT', 504, :now, :now)"
    ),
    (
        "INSERT INTO holds (id, run_id, account_id, amount, status, created_at)"
        " VALUES ('hold', 'run', 'acc', 10, 'frozen', :now)"
    ),
    (
        "INSERT INTO jobs (id, kind, run_id, status, attempts, max_attempts, scheduled_at,"
        " created_at, updated_at) VALUES ('job', 'run.dispatch', 'run', 'todo', 0, 3, :now, :now, :now)"
    ),
    (
        "INSERT INTO run_events (run_id, attempt, at, event_type, level, message)"
        " VALUES ('run', 0, :now, 'x', 'info', 'm')"
    ),
]


def _to_0006_with_rows(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0006")
    now = datetime.now(UTC)
    for statement in _POPULATE_0006:
        connection.execute(text(statement), {"now": now})


async def test_a_populated_database_upgrades_to_head(database_url):
    """Existing rows survive every migration (SQLite rebuilds tables that others reference):
    the run keeps its children, its HTTP status becomes a category, its hold a freeze."""
    db = Database(database_url)
    try:
        async with db.transaction(write=True, foreign_keys=False) as conn:
            await conn.run_sync(_to_0006_with_rows)
        await upgrade(db)
        async with db.transaction() as conn:
            run = (await conn.execute(text("SELECT error_category FROM runs"))).one()
            freeze = (await conn.execute(text("SELECT id, amount FROM freezes"))).one()
            children = (await conn.execute(text("SELECT COUNT(*) FROM jobs"))).scalar_one()
            assert await conn.run_sync(_diff) == []
        assert (run[0], tuple(freeze), children) == ("timeout", ("hold", 10), 1)
    finally:
        await db.dispose()
