"""Fixtures: a live ComfyUI stand-in per test, and an engine with short timings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from wfrun.engines.comfyui import ComfyUIEngine


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[ComfyStandin]:
    server = ComfyStandin(tmp_path / "comfyui")
    server.launch()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
async def engine() -> AsyncIterator[ComfyUIEngine]:
    comfy = ComfyUIEngine("wfrun-test", settings=FAST)
    try:
        yield comfy
    finally:
        await comfy.aclose()
