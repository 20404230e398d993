"""A raw WebSocket listener for stand-in fidelity tests (records every text frame)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from tests.support.waiting import DEADLINE, until_true
from wfrun.engines.comfyui.channel import ws_url


class Listener:
    """``async with Listener(url, client_id) as ws:`` records frames in ``ws.frames``."""

    def __init__(self, base_url: str, client_id: str | None = None) -> None:
        self.url = (
            ws_url(base_url, client_id) if client_id else base_url.replace("http", "ws") + "/ws"
        )
        self.frames: list[dict[str, Any]] = []
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._ws = await connect(self.url)
        self._task = asyncio.create_task(self._read(self._ws))
        await self.until(lambda frames: len(frames) >= 1)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the socket (idempotent)."""
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(WebSocketException):
            async for frame in ws:
                if isinstance(frame, str):
                    self.frames.append(json.loads(frame))

    async def until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = DEADLINE
    ) -> None:
        """Waits until ``predicate(frames)`` holds."""
        try:
            await until_true(lambda: predicate(self.frames), what="frames", timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; frames so far: {self.types()}") from None

    async def until_done(self, prompt_id: str, timeout: float = DEADLINE) -> None:
        """Waits for ``executing`` with ``node: null`` of ``prompt_id``."""
        await self.until(lambda frames: any(_is_done(f, prompt_id) for f in frames), timeout)

    def types(self) -> list[str]:
        return [str(frame["type"]) for frame in self.frames]


def _is_done(frame: dict[str, Any], prompt_id: str) -> bool:
    data = frame["data"]
    return (
        frame["type"] == "executing"
        and data.get("node") is None
        and data.get("prompt_id") == prompt_id
    )
