"""Serve the real app with uvicorn on a loopback port inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn

from wfrun.api.app import create_app
from wfrun.api.deps import API_PREFIX
from wfrun.runtime import Runtime


@dataclass(frozen=True)
class LiveServer:
    base_url: str

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX


@asynccontextmanager
async def start_server(
    runtime: Runtime, *, embedded_worker: bool = False
) -> AsyncIterator[LiveServer]:
    app = create_app(runtime.settings, runtime=runtime, embedded_worker=embedded_worker)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task
        sock.close()
