"""Waiting on conditions instead of sleeping: a test states what it waits for and a generous
deadline, never a guess at how long the code under test takes (which a busy machine breaks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEADLINE = 30.0
"""Seconds before a wait fails: far above what any condition needs on an idle machine."""


async def until(
    condition: Callable[[], Awaitable[bool]],
    *,
    what: str,
    timeout: float = DEADLINE,
    interval: float = 0.02,
) -> None:
    """Evaluates ``condition`` until it is true; fails naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


def until_sync(
    condition: Callable[[], bool], *, what: str, timeout: float = DEADLINE, interval: float = 0.02
) -> None:
    """:func:`until` for synchronous tests."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
