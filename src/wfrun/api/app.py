"""The ASGI application factory. Nothing connects at import time; the lifespan builds the
runtime (and, in embedded mode, runs the worker it is given in the same process)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import Depends, FastAPI
from starlette.types import Scope

from wfrun import __version__, web
from wfrun.api import contract, errors
from wfrun.api.access_log import AccessLog
from wfrun.api.console_bridge import console_bridge
from wfrun.api.deps import API_PREFIX
from wfrun.api.guards import BodyLimit, CatchAll, Limit
from wfrun.api.metrics import RequestMetrics, metrics_port
from wfrun.api.routes import (
    account,
    assets,
    files,
    health,
    market,
    model_runs,
    provider,
    real_person,
    runs,
    webhooks,
)
from wfrun.api.shedding import Shedding
from wfrun.api.text import refuse_bad_text
from wfrun.api.uploads import MULTIPART_OVERHEAD
from wfrun.config import Settings
from wfrun.errors import AssetTooLarge
from wfrun.runtime import Runtime, build_runtime

Background = Callable[[Runtime, asyncio.Event], Coroutine[Any, Any, None]]
"""Work run beside the API until its stop event is set (the embedded worker)."""


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, background: Background | None = None
) -> FastAPI:
    """Build the API.

    Args:
        settings: the process settings.
        runtime: an already-built runtime (tests and ``wfrun serve`` share one); built from
            ``settings`` in the lifespan when omitted.
        background: also run this in the process, from startup to shutdown (``wfrun serve``
            passes :func:`wfrun.workers.worker.run_embedded`); the API does not know workers.
    """

    app = FastAPI(
        title="wfrun",
        version=__version__,
        summary="Sell AI workflow runs over a chenyu Open API v2 compatible API.",
        lifespan=_lifespan(settings, runtime, background),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # contract.install serves /docs and /redoc without a CDN
        redoc_url=None,
        dependencies=[Depends(refuse_bad_text)],
    )
    errors.install(app, retry_after=settings.api.retry_after_seconds)
    app.add_middleware(Shedding, settings=settings.limits)  # innermost: sheds before routing
    app.add_middleware(BodyLimit, limit_for=_body_limits(settings))
    app.add_middleware(RequestMetrics)  # inside CatchAll: a bug's 500 is observed as raised
    app.add_middleware(CatchAll)
    app.add_middleware(AccessLog)  # added last: the outermost (its ids are on every answer)
    _add_routes(app)
    if settings.metrics.port is None:  # else /metrics is served on its own port only
        app.include_router(health.metrics_router)
    contract.install(app, settings)
    web.mount(app, console_bridge())
    return app


def _add_routes(app: FastAPI) -> None:
    for router in (
        market.router,
        runs.router,
        model_runs.router,
        real_person.router,
        account.router,
        assets.router,
        webhooks.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(files.router)
    app.include_router(provider.router)
    app.include_router(health.router)


UPLOAD_PATH = f"{API_PREFIX}/assets"
UPLOAD_PATHS = (UPLOAD_PATH, web.UPLOAD_PATH)
JSON_LIMIT_HINT = "upload large media with POST /assets and pass its asset:// URI"
CONSOLE_LIMIT_HINT = (
    "a console form or workflow package may weigh at most api.max_json_bytes "
    "(WFRUN_API__MAX_JSON_BYTES); keep media out of a package and upload them as assets"
)


def _body_limits(settings: Settings) -> Callable[[Scope], Limit]:
    """Uploads may weigh ``assets.max_upload_bytes`` (plus multipart framing); every other
    request ``api.max_json_bytes``. Read per request: changed settings apply at once."""

    def limit_for(scope: Scope) -> Limit:
        if scope.get("method") == "POST" and scope.get("path") in UPLOAD_PATHS:
            max_bytes = settings.assets.max_upload_bytes + MULTIPART_OVERHEAD
            return Limit(max_bytes, AssetTooLarge)
        console = str(scope.get("path", "")).startswith(web.PREFIX + "/")
        hint = CONSOLE_LIMIT_HINT if console else JSON_LIMIT_HINT
        return Limit(settings.api.max_json_bytes, hint=hint)

    return limit_for


def _lifespan(
    settings: Settings, runtime: Runtime | None, background: Background | None
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = runtime or await build_runtime(settings)
        await rt.listen()
        app.state.runtime = rt
        stop = asyncio.Event()
        task = asyncio.create_task(background(rt, stop)) if background is not None else None
        limits_sync = asyncio.create_task(rt.rates.run(rt.db, stop))
        try:
            async with metrics_port(app, settings, rt):
                yield
        finally:
            stop.set()
            await limits_sync
            if task is not None:
                await task
            if owned:
                await rt.close()

    return lifespan
