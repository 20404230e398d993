"""Fixtures of the chaos tests."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import databases
from wfrun.db.database import Database


@pytest.fixture
def fresh_url(database_url: str) -> str:
    """The test's database, emptied (the PostgreSQL one is shared by the session)."""
    if not database_url.startswith("sqlite"):

        async def clean() -> None:
            db = Database(database_url)
            await databases.truncate_all(db)
            await db.dispose()

        asyncio.run(clean())
    return database_url
