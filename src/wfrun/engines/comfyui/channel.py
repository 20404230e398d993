"""The one long-lived WebSocket to a ComfyUI server, shared by every run on it.

Protocol facts relied on (ComfyUI 0.3.64):

- ``/ws?clientId=<id>``; the first frame is always ``status`` with ``sid``. Every event of a
  prompt goes only to the socket whose clientId is the prompt's ``client_id``; ``status``
  is broadcast. So one socket serves every prompt this engine submits to the server, and
  events are routed here by ``data.prompt_id``.
- Reconnect hazard: a second socket with the same clientId replaces the first, and when
  the old one's close is finally noticed by the server, its cleanup unregisters the id, so
  the new socket goes silent. A dropped connection may be half-dead on the server side, so
  every connection attempt after the first uses a *fresh* clientId (``<base>-<n>``), and
  the old socket is closed before reconnecting all the same. Prompts submitted
  under an older id get no more events: their runs learn it through :class:`SocketLost`
  and recover their state from ``/history`` and ``/queue``.
- A single ``execution_error`` can be large (``current_inputs`` prints tensors), so frames
  have no size limit. The server answers pings (aiohttp), which detects dead peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from wfrun.engines.comfyui.client import ComfyUnavailable
from wfrun.engines.comfyui.events import ComfyEvent, parse_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SocketLost:
    """Put into every inbox when the socket of ``generation`` went away."""

    generation: int


Inbox = asyncio.Queue[ComfyEvent | SocketLost]


@dataclass(frozen=True)
class ChannelSettings:
    """Timings of the socket; defaults suit a CPU ComfyUI with ~0.5 s stalls."""

    open_timeout: float = 10.0
    ping_interval: float = 10.0
    ping_timeout: float = 30.0
    min_backoff: float = 0.1
    max_backoff: float = 5.0


def ws_url(base_url: str, client_id: str) -> str:
    """``http(s)://host[/prefix]`` → ``ws(s)://host[/prefix]/ws?clientId=<id>``."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit(
        (scheme, parts.netloc, parts.path + "/ws", f"clientId={quote(client_id)}", "")
    )


class EventChannel:
    """Owns the socket: connects, reconnects under fresh ids, routes events to inboxes."""

    def __init__(
        self, base_url: str, client_id: str, settings: ChannelSettings | None = None
    ) -> None:
        """Creates the channel (nothing connects until :meth:`ensure_connected`).

        Args:
            base_url: The server's HTTP base URL.
            client_id: The stable base clientId of this engine instance.
            settings: Timings.
        """
        self._base_url = base_url
        self._base_id = client_id
        self._settings = settings or ChannelSettings()
        self._inboxes: dict[str, list[Inbox]] = {}
        self._generation = 0
        self._attempts = 0
        self._client_id = client_id
        self._connected = False
        self._failures = 0
        self._last_error = "not connected yet"
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None

    @property
    def generation(self) -> int:
        """Counts successful connections; the clientId changes with it."""
        return self._generation

    @property
    def client_id(self) -> str:
        """The clientId of the current (or last) socket: send it with every prompt."""
        return self._client_id

    @property
    def connected(self) -> bool:
        """True while a socket is open."""
        return self._connected

    def subscribe(self, prompt_id: str) -> Inbox:
        """Starts routing a prompt's events (and :class:`SocketLost`) to a new inbox."""
        inbox: Inbox = asyncio.Queue()
        self._inboxes.setdefault(prompt_id, []).append(inbox)
        return inbox

    def unsubscribe(self, prompt_id: str, inbox: Inbox) -> None:
        """Stops routing a prompt's events to ``inbox``."""
        inboxes = self._inboxes.get(prompt_id, [])
        if inbox in inboxes:
            inboxes.remove(inbox)
        if not inboxes:
            self._inboxes.pop(prompt_id, None)

    async def ensure_connected(self) -> int:
        """Waits until a socket is open, connecting now if needed.

        Returns:
            The generation of the open socket.

        Raises:
            ComfyUnavailable: The next connection attempt failed or timed out.
        """
        if self._connected:
            return self._generation
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"comfyui-ws {self._base_url}")
        failures = self._failures
        self._wake.set()
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._connected or self._failures > failures),
                    self._settings.open_timeout + 1.0,
                )
        if not self.connected:  # the property: mypy must not narrow the attribute here
            raise ComfyUnavailable(
                f"cannot open the WebSocket of ComfyUI at {self._base_url}: {self._last_error}"
            )
        return self._generation

    async def aclose(self) -> None:
        """Stops reconnecting and closes the socket."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws is not None:
            await self._ws.close()

    def _id_for(self, attempt: int) -> str:
        return self._base_id if attempt <= 1 else f"{self._base_id}-{attempt}"

    async def _run(self) -> None:
        backoff = self._settings.min_backoff
        while True:
            self._wake.clear()
            ws = await self._open()
            if ws is None:
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._settings.max_backoff)
                continue
            backoff = self._settings.min_backoff
            try:
                await self._read(ws)
            finally:
                await self._lost(ws)

    async def _open(self) -> ClientConnection | None:
        """One connection attempt; every attempt burns a clientId (see the module doc)."""
        self._attempts += 1
        client_id = self._id_for(self._attempts)
        try:
            ws = await connect(
                ws_url(self._base_url, client_id),
                open_timeout=self._settings.open_timeout,
                ping_interval=self._settings.ping_interval,
                ping_timeout=self._settings.ping_timeout,
                max_size=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            await self._note_failure(f"{type(exc).__name__}: {exc}")
            return None
        try:
            first = parse_message(await asyncio.wait_for(ws.recv(), self._settings.open_timeout))
        except (OSError, TimeoutError, WebSocketException) as exc:
            first, problem = None, f"no first frame ({type(exc).__name__}: {exc})"
        else:
            problem = f"unexpected first frame {first!r}"
        if first is None or first.type != "status":
            with contextlib.suppress(WebSocketException, OSError):
                await ws.close()
            await self._note_failure(problem)
            return None
        await self._set_connected(ws, client_id)
        return ws

    async def _note_failure(self, error: str) -> None:
        async with self._changed:
            self._failures += 1
            self._last_error = error
            self._changed.notify_all()

    async def _set_connected(self, ws: ClientConnection, client_id: str) -> None:
        async with self._changed:
            self._generation += 1
            self._client_id = client_id
            self._ws = ws
            self._connected = True
            self._changed.notify_all()
        log.debug("connected to %s as %s", self._base_url, self.client_id)

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            async for frame in ws:
                event = parse_message(frame)
                prompt_id = event.prompt_id if event is not None else None
                if event is not None and prompt_id is not None:
                    for inbox in self._inboxes.get(prompt_id, ()):
                        inbox.put_nowait(event)

    async def _lost(self, ws: ClientConnection) -> None:
        """Closes the old socket *before* any reconnect, then tells every run."""
        self._connected = False
        self._ws = None
        with contextlib.suppress(WebSocketException, OSError, TimeoutError):
            await asyncio.wait_for(ws.close(), self._settings.open_timeout)
        lost = SocketLost(self._generation)
        for inboxes in self._inboxes.values():
            for inbox in inboxes:
                inbox.put_nowait(lost)
        log.info("WebSocket to %s lost (generation %d)", self._base_url, self._generation)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
