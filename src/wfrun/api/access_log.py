"""The access log and request ids: the outermost of wfrun's ASGI middleware.

Every HTTP request gets a request id — the caller's ``X-Request-Id`` when it is 1 to 128
printable ASCII characters without spaces, else a fresh one — returned in the ``X-Request-Id``
header of every answer (errors and streams included) and bound (structlog contextvars) into
every line logged while the request is handled. When it ends, one ``wfrun.access`` line says
``method``, ``path`` (as received, without the query string: signed links carry their
signature there), ``route`` (the matched route's template), ``status``, ``latency_ms`` and,
once the key was resolved (:func:`remember_account`), ``account_id``.

A bug's exception is logged here or by ``guards.CatchAll`` with :func:`log_unhandled`: one
line naming the request and the error, with one traceback.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import fastapi.routing
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, clear_contextvars

log = logging.getLogger("wfrun.access")
errors_log = logging.getLogger("wfrun.api.errors")

REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID = 128
_ACCOUNT = "account_id"
_TEMPLATES = "route_templates"


def accepted_request_id(value: str | None) -> str | None:
    """``value`` when it may serve as a request id (1..128 characters, each printable ASCII
    other than space), else None."""
    if value is None or not 0 < len(value) <= MAX_REQUEST_ID:
        return None
    return value if all("!" <= ch <= "~" for ch in value) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def remember_account(scope: Scope, account_id: str) -> None:
    """Called once the caller's key resolved: its account goes on the access line and on
    every later line of the request."""
    scope.setdefault("state", {})[_ACCOUNT] = account_id
    bind_contextvars(account_id=account_id)


def _route_templates(app: Any) -> dict[int, str]:
    """Each route's full path template, by route object id: FastAPI ≥ 0.165 keeps included
    routers nested, and their routes' own paths lack the prefix (the context has it)."""
    routes = list(getattr(app, "routes", ()))
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    templates: dict[int, str] = {}
    for item in walk(routes) if walk is not None else routes:
        original = getattr(item, "original_route", item)
        template = getattr(item, "path_format", None) or getattr(original, "path", None)
        if template:
            templates.setdefault(id(original), template)
    return templates


def route_template(scope: Scope) -> str | None:
    """The matched route's full path template (``/api/open/v2/assets/{asset_id}``), or None
    when no route matched."""
    route = scope.get("route")
    if route is None:
        return None
    app = scope["app"]
    cache: dict[int, str] | None = getattr(app.state, _TEMPLATES, None)
    if cache is None or id(route) not in cache:  # the first request (or a route added since)
        cache = _route_templates(app)
        cache.setdefault(id(route), getattr(route, "path", ""))
        setattr(app.state, _TEMPLATES, cache)
    return cache[id(route)]


def _request_fields(scope: Scope) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "route": route_template(scope),
    }
    account = scope.get("state", {}).get(_ACCOUNT)
    if account is not None:
        fields[_ACCOUNT] = account
    return fields


def log_unhandled(scope: Scope, exc: BaseException) -> None:
    """The one line of a bug's exception: the request, the error's type and message, and
    its traceback."""
    fields = _request_fields(scope) | {
        "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "error": str(exc)[:1000],
    }
    errors_log.error("unhandled error", exc_info=exc, extra=fields)


class AccessLog:
    """Request ids and the access log (see the module docstring); HTTP requests only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._request(scope, receive, send)
        else:  # lifespan, websockets
            await self.app(scope, receive, send)

    async def _request(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = accepted_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        request_id = given or new_request_id()
        clear_contextvars()  # this request's task: nothing of another request is bound
        bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})  # shared by every Request of this scope
        status: int | None = None
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # a half-sent answer's bug (guards.CatchAll answers the rest)
            failed = True
            log_unhandled(scope, exc)
            raise
        finally:
            self._log(scope, status or (500 if failed else None), started)

    @staticmethod
    def _log(scope: Scope, status: int | None, started: float) -> None:
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        fields = _request_fields(scope) | {"status": status, "latency_ms": latency_ms}
        log.info("request", extra=fields)
