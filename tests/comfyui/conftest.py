"""Fixtures: a live ComfyUI stand-in per test, and an engine with short timings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.comfyui.helpers import FAST, PATIENT
from wfrun.engines.comfyui import ComfyUIEngine


@pytest.fixture
async def engine() -> AsyncIterator[ComfyUIEngine]:
    comfy = ComfyUIEngine("wfrun-test", settings=FAST)
    try:
        yield comfy
    finally:
        await comfy.aclose()


@pytest.fixture
async def patient_engine() -> AsyncIterator[ComfyUIEngine]:
    """An engine that does not give up on an unreachable instance or an unconfirmed cancel."""
    comfy = ComfyUIEngine("wfrun-patient", settings=PATIENT)
    try:
        yield comfy
    finally:
        await comfy.aclose()
