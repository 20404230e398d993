"""The API's metrics: :class:`RequestMetrics` observes every HTTP request by method, route
*template* (``/api/open/v2/workflow/run/info``, never the raw path with its ids; ``unmatched``
when no route took it) and status; :func:`metrics_port` serves ``/metrics`` on a port of its
own when ``metrics.port`` is set (the API's own port then has no ``/metrics``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wfrun.config import Settings
from wfrun.metrics.exposition import serving
from wfrun.runtime import Runtime
from wfrun.services.metrics_snapshot import scrape

UNMATCHED = "unmatched"


class RequestMetrics:
    """ASGI middleware: one observation per HTTP request, after its answer (a request the app
    raised on counts as 500). Reads the runtime from the app at request time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        if runtime is not None:
            route = self._route(scope)
            runtime.metrics.observe_request(scope["method"], route, status, seconds)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        if self._templates is None:
            self._templates = dict(_templates(scope["app"].routes))
        fallback = getattr(route, "path_format", None) or UNMATCHED
        return self._templates.get(id(route), fallback)


def _templates(routes: Iterable[Any]) -> Iterable[tuple[int, str]]:
    """(id of the route Starlette puts in ``scope["route"]``, its full path template). FastAPI
    ≥ 0.165 keeps an included router nested and puts the original route, whose own path lacks
    the prefix, in the scope; its context knows the served path."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # older FastAPI: already flat, paths complete
        flat: Iterable[Any] = routes
    else:
        flat = iter_route_contexts(list(routes))
    for route in flat:
        original = getattr(route, "original_route", route)
        path = getattr(route, "path_format", None) or getattr(original, "path_format", None)
        if path:
            yield id(original), path


@contextlib.asynccontextmanager
async def metrics_port(app: FastAPI, settings: Settings, runtime: Runtime) -> AsyncIterator[None]:
    """Serve ``/metrics`` on ``metrics.port`` for the block (nothing when unset); the bound
    port is ``app.state.metrics_port``."""
    config = settings.metrics
    if config.port is None:
        yield
        return

    async def render() -> bytes:
        return await scrape(runtime.metrics, runtime.db, timeout=config.scrape_timeout_seconds)

    async with serving(render, config.host, config.port) as bound:
        app.state.metrics_port = bound
        yield
