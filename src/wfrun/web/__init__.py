"""The web console (``/console/``): server-rendered pages for customers and operators.

Jinja2 templates and one stylesheet and script of our own, all shipped in this package and
served by wfrun itself (no build step, no CDN). Pages call the services directly; what they
borrow from the API (amount rendering, the event stream, uploads) arrives as a
:class:`~wfrun.web.bridge.Bridge` from the API's factory.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from wfrun.web import account_pages, auth_pages, customer_pages, live, operator_pages
from wfrun.web.bridge import Bridge
from wfrun.web.context import PREFIX, Console, build_environment

__all__ = ["PREFIX", "UPLOAD_PATH", "mount"]

UPLOAD_PATH = PREFIX + live.UPLOAD_PATH
"""The console's media upload (the API gives it the upload size limit)."""


def mount(app: FastAPI, bridge: Bridge) -> None:
    """Serve the console under ``/console`` and send ``/`` there."""
    app.state.console = Console(bridge, build_environment())
    for router in (
        auth_pages.router,
        live.router,
        customer_pages.router,
        account_pages.router,
        operator_pages.router,
    ):
        app.include_router(router, prefix=PREFIX, include_in_schema=False)
    app.mount(
        PREFIX + "/static", StaticFiles(packages=[("wfrun.web", "static")]), name="console-static"
    )
    app.add_api_route("/", _to_console, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX, _to_console, methods=["GET"], include_in_schema=False)


async def _to_console() -> RedirectResponse:
    return RedirectResponse(PREFIX + "/", status_code=307)
