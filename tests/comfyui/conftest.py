"""Fixtures: a live ComfyUI stand-in per test, and an engine with short timings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.comfyui.helpers import FAST
from wfrun.engines.comfyui import ComfyUIEngine


@pytest.fixture
async def engine() -> AsyncIterator[ComfyUIEngine]:
    comfy = ComfyUIEngine("wfrun-test", settings=FAST)
    try:
        yield comfy
    finally:
        await comfy.aclose()
