"""Everything the engine keeps per ComfyUI server: HTTP client, socket, class catalogue.

Protocol facts relied on (ComfyUI 0.3.64):

- ``GET /history/{id}`` is ``{}`` while a prompt is pending or running *and* when it is
  unknown; ``GET /queue`` tells those apart. A running prompt stays listed in the queue
  until its history entry is written, so "not in history, then not in the queue, then
  still not in history" means the server does not know the prompt (never queued, deleted
  while pending, or forgotten by a restart: queue and history live in memory only).
- ``POST /queue {"delete"}`` only removes *pending* prompts and ``POST /interrupt
  {"prompt_id"}`` only stops a *running* one; both answer 200 whatever happened, so
  withdrawing a prompt sends both (delete first: it may start in between).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from wfrun.engines.comfyui.channel import ChannelSettings, EventChannel
from wfrun.engines.comfyui.client import DEFAULT_TIMEOUT, ComfyClient, ComfyRequestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComfyUISettings:
    """Timings of the ComfyUI engine.

    Attributes:
        http_timeout: Per-request httpx timeouts (tolerant of ~0.5 s event-loop stalls).
        channel: WebSocket timings.
        poll_interval: Watchdog period (``/history`` + ``/queue``) while events flow.
        orphan_poll_interval: Poll period while no events can arrive for the prompt
            (socket lost, or attached to a prompt submitted by an earlier worker).
        unreachable_grace: How long the server may stay unreachable mid-run before the
            run fails as transient.
        history_retry: How long to retry ``/history`` after ``executing(null)``.
        cancel_timeout: How long to try confirming a cancellation.
        tick: How often the interrupt flag is checked.
    """

    http_timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    channel: ChannelSettings = field(default_factory=ChannelSettings)
    poll_interval: float = 3.0
    orphan_poll_interval: float = 0.5
    unreachable_grace: float = 15.0
    history_retry: float = 2.0
    cancel_timeout: float = 10.0
    tick: float = 0.05


@dataclass(frozen=True)
class Location:
    """Where a server has a prompt: its history entry, or whether it is queued."""

    entry: dict[str, Any] | None
    queued: bool

    @property
    def known(self) -> bool:
        """True when the server knows the prompt at all."""
        return self.entry is not None or self.queued


class InstanceSession:
    """The engine's state for one server (one event loop)."""

    def __init__(self, base_url: str, client_id: str, settings: ComfyUISettings) -> None:
        """Creates the session; nothing connects yet."""
        self.base_url = base_url
        self.settings = settings
        self.client = ComfyClient(base_url, timeout=settings.http_timeout)
        self.channel = EventChannel(base_url, client_id, settings.channel)
        self._object_info: dict[str, Any] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def object_info(self) -> dict[str, Any] | None:
        """``/object_info``, fetched once; None (and retried next time) if unavailable."""
        if self._object_info is None:
            try:
                self._object_info = await self.client.object_info()
            except ComfyRequestError as exc:
                log.warning("no /object_info from %s: %s", self.base_url, exc.message)
        return self._object_info

    async def locate(self, prompt_id: str) -> Location:
        """Looks the prompt up in ``/history`` then ``/queue`` (then history again).

        Raises:
            ComfyRequestError: The server could not be asked.
        """
        entry = await self.client.history(prompt_id)
        if entry is not None:
            return Location(entry, False)
        if (await self.client.queue()).knows(prompt_id):
            return Location(None, True)
        return Location(await self.client.history(prompt_id), False)

    async def withdraw(self, prompt_id: str) -> None:
        """Best effort: removes the prompt if pending and interrupts it if running."""
        with contextlib.suppress(ComfyRequestError):
            await self.client.delete_pending(prompt_id)
            await self.client.interrupt(prompt_id)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs ``work`` in the background (bounded by the HTTP timeouts), kept until done."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Waits briefly for background work, then closes socket and client."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=5.0)
        for task in list(self._background):
            task.cancel()
        await self.channel.aclose()
        await self.client.aclose()
