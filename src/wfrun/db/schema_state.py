"""Where the database's schema stands, cheaply: admin commands check it on every call, so this
reads the migration files as text and one row of ``alembic_version`` instead of loading Alembic
(``db/migrate.py`` applies migrations; a test checks both agree on the head)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection as SyncConnection

from wfrun.db.database import Database

_VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def newest_revision() -> str | None:
    """The head of the migration history: the revision no other revision revises."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in _VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(source)
        revised.update(_QUOTED.findall(down.group(1)) if down else [])
    heads = sorted(revisions - revised)
    return heads[0] if len(heads) == 1 else None


_EXISTS = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
    "postgresql": "SELECT to_regclass('alembic_version')",
}
"""Whether the version table exists, without reflection (one catalogue query)."""


def _recorded(connection: SyncConnection) -> str | None:
    if connection.execute(text(_EXISTS[connection.dialect.name])).scalar() is None:
        return None
    found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)


async def recorded_revision(db: Database) -> str | None:
    """The revision the database was migrated to (None: never migrated)."""
    async with db.transaction() as conn:
        return await conn.run_sync(_recorded)
