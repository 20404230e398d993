"""Helpers of the console tests: a live server (with its embedded worker) whose API answers
are still checked against the OpenAPI document, and people signed in through the real pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from tests.support.contract import ContractRecorder
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from wfrun.api.app import create_app
from wfrun.cli.console_admin import invite_link, make_operator
from wfrun.runtime import Runtime
from wfrun.services import accounts, catalog, seed
from wfrun.workers.worker import run_embedded

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
REVISION = re.compile(r'name="revision_id" value="([^"]*)"')
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Console:
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@asynccontextmanager
async def serve_console(runtime: Runtime, *, worker: bool = True) -> AsyncIterator[Console]:
    """The real app under uvicorn; API answers are checked against the document, console
    pages (HTML, not operations of the API) are not."""
    app = create_app(runtime.settings, runtime=runtime, background=run_embedded if worker else None)
    recorder = ContractRecorder(app)
    server, task, port = await serve_on_loopback(recorder, lifespan="on")
    try:
        yield Console(f"http://127.0.0.1:{port}")
    finally:
        await stop_serving(server, task)
    api_problems = [p for p in recorder.problems if not _console_answer(p)]
    assert api_problems == [], "answers off the OpenAPI document:\n" + "\n".join(api_problems)


def _console_answer(problem: str) -> bool:
    path = problem.split(" ")[1]
    return path == "/" or path == "/console" or path.startswith("/console/")


@dataclass(frozen=True)
class World:
    operator_id: str
    customer_id: str
    workflow_id: str


async def seed_world(runtime: Runtime, *, balance: int = 10_000_000_000) -> World:
    """An operator (with the demo workflow published) and a customer with credit."""
    operator = await accounts.create_account(runtime.db, display_name="Ops")
    await make_operator(runtime.db, operator)
    customer = await accounts.create_account(runtime.db, display_name="Customer One")
    await accounts.top_up(runtime.db, account_id=customer, amount=balance, memo="welcome")
    imported = await catalog.import_package(
        runtime.db, owner_id=operator, document=seed.demo_package(), publish=True
    )
    return World(operator, customer, imported.workflow_id)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries its CSRF token"
    return found.group(1)


def revision_of(html: str) -> str:
    """The revision a workflow form shows (its hidden ``revision_id``)."""
    found = REVISION.search(html)
    assert found, "the form carries the revision it shows"
    return found.group(1)


async def invitation_path(runtime: Runtime, account_id: str, email: str, **ttl: float) -> str:
    """The path of the link ``wfrun accounts invite`` prints."""
    made = await invite_link(
        runtime.db,
        runtime.settings,
        account_id=account_id,
        email=email,
        ttl=timedelta(**ttl or {"hours": 1}),
    )
    return urlsplit(made.link).path


async def accept(client: httpx.AsyncClient, path: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    form = {"csrf_token": csrf_of(page.text), "password": password, "password_again": password}
    return await client.post(path, data=form)


@asynccontextmanager
async def signed_in_client(
    runtime: Runtime, console: Console, account_id: str, email: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose cookie jar holds a session of ``email`` (invited, password set)."""
    async with httpx.AsyncClient(base_url=console.base_url, timeout=30) as client:
        answer = await accept(client, await invitation_path(runtime, account_id, email))
        assert answer.status_code == 303, answer.text
        yield client
