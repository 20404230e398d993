"""Console routes: pages answer HTML, also when they fail (an error page in words from the
error's detail, with the status the API would give it); the page's own JSON endpoints
(quote, upload) fail with the API's error envelope instead."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from wfrun.errors import ServiceError, Unauthenticated
from wfrun.web.context import SignInRequired, build_ctx

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """Renders :class:`ServiceError` as an error page and sends strangers to sign in."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired:
                ctx = await build_ctx(request)
                return ctx.redirect(f"/login?next={request.url.path}")
            except ServiceError as exc:
                ctx = await build_ctx(request)
                return ctx.error_page(exc)

        return handler


class JsonRoute(APIRoute):
    """Strangers get the API's 401 envelope (raised as a ServiceError by the route)."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired:
                raise Unauthenticated("sign in to the console first") from None

        return handler
