"""``/docs`` (Swagger UI) and ``/redoc`` with every asset served by wfrun itself.

The assets are the files of the pinned ``fastapi-offline`` package (Swagger UI's bundle and
CSS, ReDoc's standalone bundle, a favicon), installed by pip from the project's own
dependencies: nothing is fetched at run time, so the pages render with no internet."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PACKAGE = "fastapi_offline"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
"""Nothing but wfrun: ReDoc's bundle links its vendor's logo from a CDN, which the browser
now refuses instead of waiting for it where the internet is slow or absent."""


def assets_directory() -> Path:
    return Path(str(files(ASSETS_PACKAGE) / "static"))


def install(app: FastAPI, *, prefix: str, openapi_url: str) -> None:
    """Serve the two pages under ``prefix`` and their assets under ``prefix/docs-assets``."""
    assets = f"{prefix}/docs-assets"
    title = f"{app.title} API"

    async def swagger() -> HTMLResponse:
        return _local_only(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=title,
                swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                swagger_css_url=f"{assets}/swagger-ui.css",
                swagger_favicon_url=f"{assets}/favicon.png",
                swagger_ui_parameters={
                    "persistAuthorization": True,
                    "validatorUrl": None,  # no badge fetched from an outside validator
                },
            )
        )

    async def redoc() -> HTMLResponse:
        return _local_only(
            get_redoc_html(
                openapi_url=openapi_url,
                title=title,
                redoc_js_url=f"{assets}/redoc.standalone.js",
                redoc_favicon_url=f"{assets}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.mount(assets, StaticFiles(directory=assets_directory()), name="docs-assets")
    app.add_api_route(f"{prefix}/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{prefix}/redoc", redoc, methods=["GET"], include_in_schema=False)


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page
