"""Fixtures of the console tests: the seeded world and a live console without a worker (a
module may override ``world``, e.g. with another starting balance)."""

from __future__ import annotations

import pytest

from tests.web.console import World, seed_world, serve_console


@pytest.fixture
async def world(runtime) -> World:
    return await seed_world(runtime)


@pytest.fixture
async def console(runtime, world):
    async with serve_console(runtime, worker=False) as live:
        yield live
