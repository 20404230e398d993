"""Console routes: pages answer HTML, also when they fail (an error page in words from the
error's detail, with the status the API would give it); the page's own JSON endpoints
(quote, upload) fail with the API's error envelope instead."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from wfrun.errors import ServiceError, Unauthenticated
from wfrun.web.context import SignInRequired, build_ctx

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """Renders :class:`ServiceError` as an error page and sends strangers to sign in."""

    async def on_failure(self, request: Request, exc: SignInRequired | ServiceError) -> Response:
        ctx = await build_ctx(request)
        if isinstance(exc, SignInRequired):
            query = f"?{request.url.query}" if request.url.query else ""
            return ctx.redirect(f"/login?next={quote(request.url.path + query, safe='/')}")
        return ctx.error_page(exc)

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except (SignInRequired, ServiceError) as exc:
                return await self.on_failure(request, exc)
            finally:
                await request.close()  # a parsed form's spooled files

        return handler


class JsonRoute(PageRoute):
    """Failures leave as the API's error envelope (its handlers render them); strangers get
    401."""

    async def on_failure(self, request: Request, exc: SignInRequired | ServiceError) -> Response:
        if isinstance(exc, SignInRequired):
            raise Unauthenticated("sign in to the console first") from None
        raise exc
