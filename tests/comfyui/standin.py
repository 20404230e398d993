"""A ComfyUI 0.3.64 stand-in for tests: a real HTTP + WebSocket server on 127.0.0.1.

It runs in its own thread and event loop (like a separate process: a blocked loop in the
engine under test cannot hide in it), serves the recorded protocol (``standin_app``), and
executes ONE prompt at a time with wfrun's local executor (``standin_exec``). Node classes
are the local engine's, so outputs are byte-identical to the local engine's.

Knobs: :meth:`stop` / :meth:`start` (down/up on the same port, memory kept, like a network
outage), :meth:`crash` / :meth:`start` (a process down until the test restarts it),
:meth:`crash_restart` (queue, history, cache and sockets forgotten, ``number`` back
to 0: a process restart), :meth:`drop_sockets`, :attr:`reply_delay` (every HTTP reply
delayed), :attr:`custom_nodes` (extra classes listed in ``/object_info``) and :meth:`freeze`
(blocks the server loop, like ComfyUI's ``gc.collect`` stall).
Instead of racing the stand-in, a test controls it (``standin_holds``): :meth:`hold` keeps
prompts pending, or stops a running one at a node, until :meth:`release`; :attr:`clock` stamps
the events, and a stopped clock makes the engine time ComfyUI reports exact.
Every HTTP request is recorded in :attr:`requests`.

Not reproduced: binary preview frames (``progress`` messages come from TestSleep only),
``/view`` ``preview`` and ``channel`` re-encoding, the jobs API of 0.38.x, ``/models``,
user-data routes, model loading; node classes other than the local engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import uvicorn

from tests.comfyui.standin_app import build_app
from tests.comfyui.standin_exec import PromptRun
from tests.comfyui.standin_files import FileStore
from tests.comfyui.standin_holds import Holds, StandinClock
from tests.comfyui.standin_state import StandinState
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from tests.support.waiting import DEADLINE, until

T = TypeVar("T")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the stand-in received it."""

    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ComfyStandin:
    """The stand-in server; :meth:`launch` / :meth:`shutdown` from synchronous code."""

    def __init__(self, root: Path) -> None:
        self.files = FileStore(root)
        self.clock = StandinClock()
        self.holds = Holds()  # touched only on the server loop (hold, release, the worker)
        self.state = self._fresh_state()  # replaced on the server loop by _boot
        self.requests: list[RecordedRequest] = []
        self.reply_delay = 0.0
        self.custom_nodes: dict[str, Any] = {}
        """Node classes this ComfyUI has beyond the core ones (``/object_info`` entries, as a
        custom-node pack adds them); listed only, executing them is not reproduced."""
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._boot(), self._loop).result(10)

    def shutdown(self) -> None:
        asyncio.run_coroutine_threadsafe(self._halt(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def call(self, fn: Callable[[StandinState], T]) -> T:
        """Runs ``fn(state)`` on the server loop (state is only touched there)."""

        async def apply() -> T:
            return fn(self.state)

        return await self._on_loop(apply())

    async def stop(self) -> None:
        """Stops listening (sockets and connections closed); memory and work are kept."""
        await self._on_loop(self._unserve())

    async def start(self) -> None:
        """Listens again on the same port."""
        await self._on_loop(self._serve())

    async def crash_restart(self, downtime: float = 0.2) -> None:
        """Like a process restart: the running prompt dies, queue/history/cache/sockets are
        forgotten, ``number`` restarts at 0; files on disk stay."""
        await self._on_loop(self._crash(downtime))

    async def crash(self) -> None:
        """Like a process that died: the running prompt dies, queue/history/cache/sockets are
        forgotten, and nothing listens until :meth:`start` (a restart as long as the test
        wants, without a sleep)."""
        await self._on_loop(self._crash_down())

    async def drop_sockets(self) -> None:
        """Closes every WebSocket from the server side; nothing else changes."""
        await self._on_loop(self._drop())

    async def hold(
        self, *, pending: bool = False, running: bool = False, node: str | None = None
    ) -> None:
        """Keeps queued prompts pending (``pending``), or stops the next prompt that starts
        before it runs ``node`` (its first node by default; ``running``), until
        :meth:`release`. A held running prompt that is interrupted ends interrupted."""

        async def apply() -> None:
            self.holds.hold(pending=pending, running=running, node=node)

        await self._on_loop(apply())

    async def release(self) -> None:
        """Ends every hold: pending prompts start, a stopped prompt goes on."""

        async def apply() -> None:
            self.holds.release()
            self.state.wake()

        await self._on_loop(apply())

    async def wait_held(self, prompt_id: str | None, timeout: float = DEADLINE) -> None:
        """Waits until ``prompt_id`` (a spec's ``engine_prompt_id``) is stopped by a running
        hold."""
        assert prompt_id is not None, "only a prompt with an id can be waited for"
        await self.wait_for(lambda _: self.holds.held == prompt_id, timeout)

    async def wait_pending(self, prompt_id: str, timeout: float = DEADLINE) -> None:
        """Waits until ``prompt_id`` is in the queue, not running."""
        await self.wait_for(
            lambda state: prompt_id in [item.prompt_id for item in state.pending()], timeout
        )

    def freeze(self, seconds: float) -> None:
        """Blocks the server's event loop for ``seconds`` (HTTP and WS stall together)."""
        self._loop.call_soon_threadsafe(time.sleep, seconds)

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests to ``path`` (with or without the ``/api`` prefix)."""
        return [
            r
            for r in list(self.requests)
            if r.method == method and r.path.removeprefix("/api") == path
        ]

    async def wait_for(
        self, predicate: Callable[[StandinState], bool], timeout: float = DEADLINE
    ) -> None:
        """Waits until ``predicate(state)``, evaluated on the server loop, is true."""
        await until(lambda: self.call(predicate), what="a stand-in condition", timeout=timeout)

    async def _on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def _boot(self) -> None:
        self._new_state()
        await self._serve()

    def _fresh_state(self) -> StandinState:
        return StandinState(self.files, holds=self.holds, clock=self.clock)

    def _new_state(self) -> None:
        self.state = self._fresh_state()
        self._worker = asyncio.create_task(self._work(self.state))

    async def _work(self, state: StandinState) -> None:
        while True:
            item = await state.next_item()
            await PromptRun(state, item).execute()

    async def _serve(self) -> None:
        if self._serving is not None:
            return
        self._server, self._serving, self.port = await serve_on_loopback(
            build_app(self, lambda app: _Middleware(app, self)),
            port=self.port,
            ws="websockets-sansio",
        )

    async def _unserve(self) -> None:
        server, serving = self._server, self._serving
        self._server, self._serving = None, None
        if server is not None and serving is not None:
            await stop_serving(server, serving)

    async def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _crash(self, downtime: float) -> None:
        await self._crash_down()
        await asyncio.sleep(downtime)
        await self._serve()

    async def _crash_down(self) -> None:
        await self._stop_worker()
        old = self.state
        await self._unserve()
        await old.close_sockets()
        self._new_state()

    async def _drop(self) -> None:
        await self.state.close_sockets()

    async def _halt(self) -> None:
        await self._stop_worker()
        await self._unserve()


class _Middleware:
    """Records requests, applies :attr:`ComfyStandin.reply_delay`, enforces the Origin rule."""

    def __init__(self, app: Any, standin: ComfyStandin) -> None:
        self.app = app
        self.standin = standin

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if _origin_mismatch(scope):
            await _refuse(scope, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        body, replay = await _buffer(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        recorded = RecordedRequest(scope["method"], scope["path"], query, body, _headers(scope))
        self.standin.requests.append(recorded)
        if self.standin.reply_delay:
            await asyncio.sleep(self.standin.reply_delay)
        await self.app(scope, replay, send)


async def _buffer(receive: Any) -> tuple[bytes, Any]:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.extend(message.get("body", b""))
        if not message.get("more_body"):
            break
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": bytes(chunks), "more_body": False}
        return await receive()

    return bytes(chunks), replay


def _headers(scope: Any) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _origin_mismatch(scope: Any) -> bool:
    headers = _headers(scope)
    origin, host = headers.get("origin"), headers.get("host", "")
    if origin is None or not host.startswith(_LOOPBACK):
        return False
    return urlsplit(origin).netloc != host


async def _refuse(scope: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": 403, "headers": []})
    await send({"type": "http.response.body", "body": b""})
