"""The ASGI application factory. Nothing connects at import time; the lifespan builds the
runtime (and, in embedded mode, runs a worker in the same process)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from wfrun import __version__
from wfrun.api import errors
from wfrun.api.deps import API_PREFIX
from wfrun.api.routes import (
    account,
    assets,
    files,
    market,
    model_runs,
    provider,
    real_person,
    runs,
)
from wfrun.config import Settings
from wfrun.runtime import Runtime, build_runtime
from wfrun.workers.worker import Worker


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, embedded_worker: bool = False
) -> FastAPI:
    """Build the API.

    Args:
        settings: the process settings.
        runtime: an already-built runtime (tests and ``wfrun serve`` share one); built from
            ``settings`` in the lifespan when omitted.
        embedded_worker: also run a worker in this process (``wfrun serve``).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = runtime or await build_runtime(settings)
        app.state.runtime = rt
        stop = asyncio.Event()
        worker_task = _start_worker(rt, stop) if embedded_worker else None
        try:
            yield
        finally:
            stop.set()
            if worker_task is not None:
                await worker_task
            if owned:
                await rt.close()

    app = FastAPI(
        title="wfrun",
        version=__version__,
        summary="Sell AI workflow runs over a chenyu Open API v2 compatible API.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    errors.install(app)
    for router in (
        market.router,
        runs.router,
        model_runs.router,
        real_person.router,
        account.router,
        assets.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(files.router)
    app.include_router(provider.router)
    app.add_api_route("/healthz", _health, methods=["GET"], include_in_schema=False)
    return app


async def _health() -> dict[str, Any]:
    return {"code": 0, "msg": "ok", "data": {"version": __version__}}


def _start_worker(runtime: Runtime, stop: asyncio.Event) -> asyncio.Task[None]:
    worker = Worker(runtime, wakeup=runtime.wakeup)
    return asyncio.create_task(worker.run(stop))
