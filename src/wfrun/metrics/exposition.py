"""``/metrics`` on a port of its own (``metrics.port`` for the API, ``wfrun worker
--metrics-port`` for a worker): a bare ASGI app served by a uvicorn server beside the
process's other work, in the same event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from wfrun.metrics.instruments import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)
Render = Callable[[], Awaitable[bytes]]
"""Produces one scrape's text exposition."""
PATH = "/metrics"


class MetricsApp:
    """GET /metrics answers the exposition; anything else a plain 404 or 405."""

    def __init__(self, render: Render) -> None:
        self.render = render

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != PATH:
            await _answer(send, 404, b"not found: the metrics are at /metrics\n")
        elif scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed\n", [(b"allow", b"GET")])
        else:
            await _answer(send, 200, await self.render(), content_type=CONTENT_TYPE)


async def _answer(
    send: Any,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    content_type: str = "text/plain; charset=utf-8",
) -> None:
    head = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    """uvicorn that leaves the process's signals to its owner (the API server or the worker)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(render: Render, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``render`` at ``http://host:port/metrics`` for the block; yields the bound port
    (``port`` 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(MetricsApp(render), lifespan="off", log_config=None, access_log=False)
    server = _Server(config)
    bound = int(sock.getsockname()[1])
    task = asyncio.create_task(server.serve(sockets=[sock]))
    log.info("metrics at http://%s:%d%s", host, bound, PATH)
    try:
        yield bound
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def serving_process(
    metrics: Metrics, host: str, port: int | None
) -> AsyncIterator[int | None]:
    """A worker's ``--metrics-port``: this process's own instruments (no database values:
    the API serves those once for every process); yields the bound port, or None (and serves
    nothing) when ``port`` is None."""
    if port is None:
        yield None
        return

    async def render() -> bytes:
        return metrics.render()

    async with serving(render, host, port) as bound:
        yield bound
