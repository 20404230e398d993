"""``/docs`` (Swagger UI) and ``/redoc`` load every asset from wfrun itself: no external URL in
the HTML, every script and stylesheet they reference is served by the app, and Swagger UI
renders the operations list in headless Chromium with every non-loopback request refused."""

from __future__ import annotations

import re
import shutil
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Request, Route, async_playwright

from tests.support.server import LiveServer

PAGES = ("/api/open/v2/docs", "/api/open/v2/redoc")
REFERENCE = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""")
ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
async def pages(runtime, server: LiveServer) -> dict[str, str]:
    """Each docs page's HTML (the pages do not touch the database: SQLite is enough)."""
    found = {}
    async with httpx.AsyncClient(base_url=server.base_url) as root:
        for page in PAGES:
            answer = await root.get(page)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in answer.headers["content-security-policy"]
            found[page] = answer.text
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_docs_pages_reference_only_wfrun(pages, server: LiveServer):
    async with httpx.AsyncClient(base_url=server.base_url) as root:
        for page, html in pages.items():
            assert not re.search(r"(https?:)?//[a-z0-9]", html, re.IGNORECASE), page
            references = REFERENCE.findall(html)
            assert len(references) >= 3, (page, references)  # script, favicon, document, …
            for reference in references:
                assert reference.startswith("/api/open/v2/"), reference
                answer = await root.get(reference)
                assert answer.status_code == 200, reference
                suffix = reference[reference.rfind(".") :]
                kind = ASSET_TYPES.get(suffix, "application/json")
                assert kind in answer.headers["content-type"], reference
                assert len(answer.content) > 100, reference


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_swagger_ui_renders_the_operations_offline(pages, server: LiveServer, http):
    """Real Chromium (Debian's, never a downloaded build); requests off loopback are aborted
    and recorded, so a page that needs the internet fails here."""
    document = (await http.get("/openapi.json")).json()
    operations = sum(len(item) for item in document["paths"].values())
    chromium = shutil.which("chromium")
    assert chromium, "install Debian's chromium (apt-get install -y chromium; .ci/run does)"
    outside: list[str] = []

    async def only_loopback(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in ("127.0.0.1", None):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.route("**/*", only_loopback)
            await page.goto(server.base_url + "/api/open/v2/docs")
            blocks = page.locator(".opblock")
            await blocks.first.wait_for(state="visible", timeout=30_000)
            assert await blocks.count() == operations
            assert await page.locator("button.authorize").count() == 1  # the bearer scheme
            await page.goto(server.base_url + "/api/open/v2/redoc")
            submit = page.get_by_text("Submit a paid run (idempotent)").first
            await submit.wait_for(state="attached", timeout=30_000)
        finally:
            await browser.close()
    assert outside == []
