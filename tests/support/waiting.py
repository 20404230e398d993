"""Waiting on conditions instead of sleeping: a test states what it waits for and a generous
deadline, never a guess at how long the code under test takes (which a busy machine breaks).

A condition returns something truthy when it holds; :func:`until` and :func:`until_sync` return
that value, so a test can wait for a thing and use it (``row = await until(ended, ...)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 30.0
"""Seconds before a wait fails: far above what any condition needs on an idle machine."""


async def until(
    condition: Callable[[], Awaitable[T | None]],
    *,
    what: str,
    timeout: float = DEADLINE,
    interval: float = 0.02,
) -> T:
    """Evaluates ``condition`` until it is truthy and returns its value; fails naming ``what``
    after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not (value := await condition()):
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
    return value


async def until_true(
    condition: Callable[[], T | None],
    *,
    what: str,
    timeout: float = DEADLINE,
    interval: float = 0.02,
) -> T:
    """:func:`until` for a synchronous condition checked from async code (a stand-in's state,
    a recording sink), without blocking the event loop while waiting."""

    async def check() -> T | None:
        return condition()

    return await until(check, what=what, timeout=timeout, interval=interval)


def until_sync(
    condition: Callable[[], T | None],
    *,
    what: str,
    timeout: float = DEADLINE,
    interval: float = 0.02,
) -> T:
    """:func:`until` for synchronous tests."""
    end = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return value
