"""The stand-in's in-memory server state: queue, history, sockets and the prompt worker.

Reproduced (reference §0, §4.1–§4.6, §5.1–§5.3):

- ``number`` counts every ``POST /prompt`` without an explicit ``number`` (failed ones
  too), from 0 per process; ``front`` makes it negative. The queue is a min-heap on
  ``number``; ``/queue`` lists pending items in heap order as
  ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``.
- ONE prompt runs at a time. The interrupt flag is reset when a prompt starts, so an
  interrupt between prompts is lost.
- Sockets are registered by clientId; a second socket with the same id replaces the first
  without closing it, and the old one's cleanup later unregisters the id (the reconnect
  hazard, §5.1). ``status`` is broadcast on every queue change (put, dequeue, delete,
  clear, task done).
- History lives in memory (lost by :meth:`ComfyStandin.crash_restart`), capped at 10,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket

from tests.comfyui.standin_files import FileStore
from tests.comfyui.standin_holds import Holds, StandinClock

HISTORY_CAP = 10_000
_SECRET_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


@dataclass
class QueueItem:
    """One queued prompt."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    def wire(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]

    def history_wire(self) -> list[Any]:
        extra = {k: v for k, v in self.extra_data.items() if k not in _SECRET_KEYS}
        return [self.number, self.prompt_id, self.prompt, extra, self.outputs]

    @property
    def client_id(self) -> str | None:
        value = self.extra_data.get("client_id")
        return value if isinstance(value, str) else None


class Peer:
    """One accepted WebSocket; sends are serialised."""

    def __init__(self, ws: WebSocket, sid: str) -> None:
        self.ws = ws
        self.sid = sid
        self._lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            with contextlib.suppress(Exception):
                await self.ws.send_text(json.dumps(message))

    async def close(self, code: int = 1001) -> None:
        async with self._lock:
            with contextlib.suppress(Exception):
                await self.ws.close(code)


@dataclass
class CacheEntry:
    """Outputs of the last successful prompt (ComfyUI caches the last prompt's outputs)."""

    signature: str
    nodes: list[str]
    outputs: dict[str, dict[str, Any]]


class StandinState:
    """Everything a ComfyUI process keeps in memory."""

    def __init__(
        self, files: FileStore, *, holds: Holds | None = None, clock: StandinClock | None = None
    ) -> None:
        self.files = files
        self.holds = holds or Holds()
        self.clock = clock or StandinClock()
        self.number = 0
        self.heap: list[tuple[float, int, QueueItem]] = []
        self._seq = itertools.count()
        self.running: QueueItem | None = None
        self.run_interrupt = threading.Event()
        self.current_node: str | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.sockets: dict[str, Peer] = {}
        self.peers: set[Peer] = set()
        self.cache: CacheEntry | None = None
        self._wakeup = asyncio.Event()

    def take_number(self, body: dict[str, Any]) -> float:
        if "number" in body:
            return float(body["number"])
        number: float = self.number
        if body.get("front"):
            number = -number
        self.number += 1
        return number

    def pending(self) -> list[QueueItem]:
        return [item for _, _, item in self.heap]

    def queue_remaining(self) -> int:
        return len(self.heap) + (1 if self.running is not None else 0)

    async def put(self, item: QueueItem) -> None:
        heapq.heappush(self.heap, (item.number, next(self._seq), item))
        self._wakeup.set()
        await self.broadcast_status()

    async def delete(self, prompt_ids: list[Any]) -> None:
        for prompt_id in prompt_ids:
            kept = [entry for entry in self.heap if entry[2].prompt_id != prompt_id]
            if len(kept) != len(self.heap):
                self.heap = kept
                heapq.heapify(self.heap)
                await self.broadcast_status()

    def wake(self) -> None:
        """Looks at the queue again (a hold was released)."""
        self._wakeup.set()

    async def clear(self) -> None:
        self.heap = []
        await self.broadcast_status()

    def interrupt(self, prompt_id: str | None) -> None:
        """``/interrupt``: targeted only when ``prompt_id`` is the running one."""
        running = self.running
        if running is not None and (prompt_id is None or prompt_id == running.prompt_id):
            self.run_interrupt.set()
            self.holds.wake()

    async def next_item(self) -> QueueItem:
        """Waits for a pending prompt (and for the test to release a pending hold), marks it
        running and resets the interrupt flag."""
        while not self.heap or self.holds.pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        _, _, item = heapq.heappop(self.heap)
        self.running = item
        self.run_interrupt = threading.Event()
        await self.broadcast_status()
        return item

    async def task_done(self, item: QueueItem, entry: dict[str, Any]) -> None:
        """Writes history, then the prompt stops being listed as running."""
        self.history.pop(item.prompt_id, None)
        self.history[item.prompt_id] = entry
        while len(self.history) > HISTORY_CAP:
            del self.history[next(iter(self.history))]
        self.running = None
        self.current_node = None
        await self.broadcast_status()

    def status_data(self, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": {"exec_info": {"queue_remaining": self.queue_remaining()}}
        }
        if sid is not None:
            data["sid"] = sid
        return data

    async def broadcast_status(self) -> None:
        await self.send("status", self.status_data(), None)

    async def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        """To one socket by clientId, or to every socket when ``sid`` is None."""
        message = {"type": event, "data": data}
        if sid is None:
            targets = list(self.sockets.values())
        else:
            found = self.sockets.get(sid)
            targets = [found] if found is not None else []
        for peer in targets:
            await peer.send(message)

    async def close_sockets(self) -> None:
        """Closes every accepted socket (registered or replaced) from the server side."""
        for peer in list(self.peers):
            await peer.close()
