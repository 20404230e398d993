"""The SDK and CLI against the real app on loopback (SQLite and PostgreSQL, via ``runtime``).

``live``: the app with its embedded worker, a customer with 10 CNY and the published demo
workflow. ``idle``: the same without a worker, so runs stay queued until the test acts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import factories
from tests.support.factories import Customer
from tests.support.server import LiveServer, start_server
from wfrun.runtime import Runtime


@dataclass(frozen=True)
class Live:
    server: LiveServer
    customer: Customer
    demo: str
    """The demo workflow (n1_image → poster n5_images, caption n7_text)."""
    image: Path
    """A small PNG on disk, to upload."""

    @property
    def key(self) -> str:
        return self.customer.key


async def _live(runtime: Runtime, tmp_path: Path, worker: bool) -> AsyncIterator[Live]:
    owner = await factories.operator(runtime)
    demo = await factories.publish_demo(runtime, owner)
    who = await factories.customer(runtime, balance="10")
    image = tmp_path / "in.png"
    image.write_bytes(factories.png_bytes())
    async with start_server(runtime, embedded_worker=worker) as server:
        yield Live(server, who, demo.workflow_id, image)


@pytest.fixture
async def live(runtime: Runtime, tmp_path: Path) -> AsyncIterator[Live]:
    async for env in _live(runtime, tmp_path, worker=True):
        yield env


@pytest.fixture
async def idle(runtime: Runtime, tmp_path: Path) -> AsyncIterator[Live]:
    async for env in _live(runtime, tmp_path, worker=False):
        yield env
