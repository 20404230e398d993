"""The console end to end in headless Chromium (Debian's, driven by Playwright), on both
databases: a customer invited with ``wfrun accounts invite`` sets a password, runs the demo
workflow from its form with an uploaded image, watches it reach ``succeeded`` live, opens the
output and sees the bill (exactly the API's ``run/info`` strings); an operator tops the
customer up and sees the balance change exactly. Requests off loopback are refused, so a page
needing the internet fails here. The run on SQLite also writes the screenshots of
``docs/screenshots/`` at desktop (1280×800) and phone (390×844) width."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Route,
    ViewportSize,
    async_playwright,
)

from tests.web.console import PASSWORD, Console, World, invitation_path, seed_world, serve_console
from wfrun.domain.money import format_amount, parse_amount
from wfrun.services import accounts
from wfrun.workers.worker import run_embedded

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "docs" / "sample.png"
SHOTS = ROOT / "docs" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
BILL_FIELDS = ("quote_amount", "compute_cost", "total_cost", "final_amount", "released_amount")
RECORD_STATUSES = """
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("run-status");
  if (!status) return;
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem("seen") || "[]");
    seen.push(status.dataset.status);
    sessionStorage.setItem("seen", JSON.stringify(seen));
  }).observe(status, {attributes: true, attributeFilter: ["data-status"]});
});
"""


UNLABELLED = """
[...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map(el => el.outerHTML)
"""


class Shots:
    """Screenshots of a page at desktop and phone width (only when ``enabled``)."""

    def __init__(self, browser: Browser, enabled: bool) -> None:
        self.browser, self.enabled = browser, enabled

    async def take(self, page: Page, name: str) -> None:
        """Also checks that every form control of the page has an accessible name and that
        the page fits a phone's width (nothing wider than the 390 px viewport)."""
        unlabelled = await page.evaluate(UNLABELLED)
        assert unlabelled == [], (name, unlabelled)
        if self.enabled:
            SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=SHOTS / f"{name}-desktop.png", full_page=True)
        phone = await self.browser.new_context(
            viewport=PHONE, storage_state=await page.context.storage_state(), locale="en-US"
        )
        try:
            small = await phone.new_page()
            await small.goto(page.url)
            width = await small.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (name, width)
            if self.enabled:
                await small.screenshot(path=SHOTS / f"{name}-phone.png", full_page=True)
        finally:
            await phone.close()


async def _loopback_only(context: BrowserContext, outside: list[str]) -> None:
    """Refuse (and record) requests off loopback; record the pages' console errors (a CSP
    violation, a script error) there too."""

    def console_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            outside.append(f"console: {message.text}")

    context.on("console", console_error)
    context.on(
        "response",
        lambda r: (
            outside.append(f"answer {r.status}: {r.request.method} {r.url}")
            if r.status >= 400
            else None
        ),
    )
    context.on("weberror", lambda error: outside.append(f"page error: {error.error}"))

    async def only_loopback(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    await context.route("**/*", only_loopback)


async def _accept_invitation(page: Page, console: Console, path: str) -> None:
    await page.goto(console.url(path))
    await page.get_by_label("New password").fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    await page.get_by_role("button", name="Set your password").click()
    await page.wait_for_url(console.url("/console/"))


async def _api_run_info(console: Console, secret: str, run_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=console.url("/api/open/v2")) as api:
        answer = await api.get(
            "/workflow/run/info",
            params={"run_order_id": run_id},
            headers={"Authorization": f"Bearer {secret}"},
        )
    data: dict[str, object] = answer.json()["data"]
    return data


@pytest.fixture
async def world(runtime) -> World:
    return await seed_world(runtime)


async def test_a_customer_runs_the_demo_and_an_operator_tops_them_up(
    runtime, world: World, database_url: str
):
    chromium = shutil.which("chromium")
    assert chromium, "install Debian's chromium (apt-get install -y chromium; .ci/run does)"
    key = await accounts.create_key(runtime.db, account_id=world.customer_id, name="check")
    outside: list[str] = []
    async with serve_console(runtime, worker=False) as console, async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        shots = Shots(browser, enabled=database_url.startswith("sqlite"))
        try:
            run_id = await _customer_runs_the_demo(runtime, console, browser, world, shots, outside)
            info = await _api_run_info(console, key.secret, run_id)
            await _customer_sees_the_bill(console, browser, run_id, info, shots)
            await _operator_tops_up(runtime, console, browser, world, shots, outside)
            await _a_stranger_is_refused(runtime, console, browser, run_id)
        finally:
            await browser.close()
    assert outside == []


async def enhanced(page: Page, path: str) -> None:
    """``path``'s page is loaded and console.js has set up its listeners."""
    await page.wait_for_url(f"**{path}**")
    await page.locator("html[data-enhanced='true']").wait_for(state="attached")


async def _customer_runs_the_demo(
    runtime, console: Console, browser: Browser, world: World, shots: Shots, outside: list[str]
) -> str:
    context = await browser.new_context(viewport=DESKTOP, locale="en-US")
    await _loopback_only(context, outside)
    await context.add_init_script(RECORD_STATUSES)
    page = await context.new_page()
    await page.goto(console.url("/console/login"))
    await shots.take(page, "login")
    await _accept_invitation(
        page, console, await invitation_path(runtime, world.customer_id, "one@example.com")
    )
    await shots.take(page, "market")
    await page.get_by_role("link", name="Demo poster: resize, invert and soften an image").click()
    await enhanced(page, "/console/workflows/")  # else the file's change event may come first
    await page.set_input_files("#in_n1_image_file", SAMPLE)
    await page.locator("#in_n1_image_preview img").wait_for()
    assert (await page.input_value("#in_n1_image")).startswith("asset://asset_")
    await page.get_by_label("Width").fill("128")
    await page.wait_for_function(
        "document.getElementById('quote-amount').textContent === '0.03000000'"
    )
    await shots.take(page, "workflow")
    await page.get_by_role("button", name="Run", exact=True).click()
    await enhanced(page, "/console/runs/wfrun_")  # its event stream is being followed
    await page.locator('#run-status[data-status="queued"]').wait_for()
    await shots.take(page, "run-queued")
    stop = asyncio.Event()
    worker = asyncio.create_task(run_embedded(runtime, stop))  # the run starts only now
    try:
        await page.locator('#run-status[data-status="succeeded"]').wait_for(timeout=60_000)
        await page.locator("#outputs img").first.wait_for()
    finally:
        stop.set()
        await worker
    seen = await page.evaluate("JSON.parse(sessionStorage.getItem('seen') || '[]')")
    assert "succeeded" in seen, seen  # changed live by the event stream, before the reload
    return page.url.rsplit("/", 1)[1]


async def _customer_sees_the_bill(
    console: Console, browser: Browser, run_id: str, info: dict[str, object], shots: Shots
) -> None:
    context = browser.contexts[0]
    page = context.pages[0]
    assert page.url == console.url(f"/console/runs/{run_id}")
    image = page.locator("#outputs img").first
    assert await image.evaluate("i => i.complete && i.naturalWidth") == 128
    assert await page.locator(".text-output").inner_text() == "hello from wfrun"
    download = await page.locator("#outputs a.download").first.get_attribute("href")
    assert download
    opened = await page.request.get(download)
    assert opened.status == 200
    assert opened.headers["content-type"] == "image/png"
    assert (await opened.body())[:8] == b"\x89PNG\r\n\x1a\n"
    assert info["run_status"] == "succeeded"
    for field in BILL_FIELDS:
        shown = await page.locator(f'[data-field="{field}"]').inner_text()
        assert shown == info[field], field
    await shots.take(page, "run")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    await shots.take(page, "runs")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    row = page.locator("tr", has=page.locator(f'a[href="/console/runs/{run_id}"]'))
    assert await row.locator("td.amount").inner_text() == info["final_amount"]
    await shots.take(page, "billing")


async def _a_stranger_is_refused(runtime, console: Console, browser: Browser, run_id: str) -> None:
    """Another customer, signed in through the sign-in form, gets a 404 for the run's page; a
    form post without its CSRF token is refused (403) and creates nothing."""
    stranger = await accounts.create_account(runtime.db, display_name="Stranger")
    context = await browser.new_context(viewport=DESKTOP, locale="en-US")
    seen: list[str] = []
    await _loopback_only(context, seen)
    page = await context.new_page()
    invited = await invitation_path(runtime, stranger, "stranger@example.com")
    await _accept_invitation(page, console, invited)
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/login**")
    await page.get_by_label("Email").fill("stranger@example.com")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.locator("form:has(#email) button[type=submit]").click()
    await page.wait_for_url(console.url("/console/"))
    answer = await page.goto(console.url(f"/console/runs/{run_id}"))
    assert answer is not None
    assert answer.status == 404
    refused = await page.request.post(console.url("/console/keys"), form={"name": "no token"})
    assert refused.status == 403
    assert await accounts.list_keys(runtime.db, stranger) == []
    await context.close()
    assert [line for line in seen if "404" not in line] == [], seen  # only the refused page


async def _operator_tops_up(
    runtime, console: Console, browser: Browser, world: World, shots: Shots, outside: list[str]
) -> None:
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    await _loopback_only(context, outside)
    page = await context.new_page()
    await page.goto(console.url("/console/lang/en"))
    await _accept_invitation(
        page, console, await invitation_path(runtime, world.operator_id, "ops@example.com")
    )
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Operator").click()
    await shots.take(page, "operator-accounts")
    await page.get_by_role("link", name=world.customer_id).click()
    before = (await accounts.get_account(runtime.db, world.customer_id)).available
    assert await page.locator("#account-available").inner_text() == format_amount(before)
    await page.get_by_label("Amount (CNY)").fill("12.5")
    await page.get_by_label("Memo").fill("support credit")
    await page.get_by_role("button", name="Top up").click()
    expected = format_amount(before + parse_amount("12.5"))
    await page.wait_for_function(
        f"document.getElementById('account-available').textContent === '{expected}'"
    )
    assert (
        await accounts.get_account(runtime.db, world.customer_id)
    ).available == before + parse_amount("12.5")
    await shots.take(page, "operator-account")
    for name in ("queue", "workflows", "instances", "ledger"):
        await page.goto(console.url(f"/console/operator/{name}"))
        await shots.take(page, f"operator-{name}")
