"""Serve an ASGI app with uvicorn on a loopback port inside the current event loop.

Shared by the live wfrun server fixture and the ComfyUI / Ark stand-ins.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from tests.support.waiting import until_true
from wfrun.cli.sockets import listen_tcp


async def serve_on_loopback(
    app: Any, *, port: int = 0, **config: Any
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Start serving; returns once uvicorn reports started (the bound port is returned)."""
    sock = listen_tcp("127.0.0.1", port)  # wfrun serve's socket: TCP_NODELAY on connections
    bound = sock.getsockname()[1]
    settings: dict[str, Any] = {
        "log_config": None,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "timeout_graceful_shutdown": 1,
    } | config
    server = uvicorn.Server(uvicorn.Config(app, **settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until_true(
        lambda: server.started or task.done(), what="uvicorn to listen", interval=0.005
    )
    if not server.started:
        await task  # it stopped before listening: raises why
    return server, task, bound


async def stop_serving(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task
