"""Issue 10: media URLs that used to crash the runner now fail their run at once, with a media
error, after one fetch; and a runner that crashes on anything else fails the run at once too.

Before the fix each of these runs hung for three leases, fetched its URL three times and
failed as ``WORKER_LOST``.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from tests.fetch.support import HttpServer, Reply
from tests.support import api
from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    drain,
    operator,
    publish_demo,
    publish_package,
    sleepy_package,
)
from tests.support.server import start_server
from wfrun.db.runs import Run, find_run
from wfrun.domain.money import parse_amount
from wfrun.engines.base import NodeResult, ProgressSink, RunSpec
from wfrun.fetch import FetchPolicy, SafeFetcher
from wfrun.runtime import Runtime
from wfrun.services import runs
from wfrun.services.accounts import Principal
from wfrun.workers.worker import Worker

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
async def redirector() -> AsyncIterator[HttpServer]:
    """A loopback server whose routes the test sets (e.g. a 302 to a malformed URL)."""
    server = HttpServer()
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


def _allow_loopback(runtime: Runtime) -> None:
    """Let the worker's fetcher reach the loopback test server (closed by default)."""
    runtime.fetcher = SafeFetcher(FetchPolicy(allow_networks=LOOPBACK, timeout_seconds=5.0))


async def _submit(runtime: Runtime, url: str) -> tuple[Customer, str]:
    workflow_id = (await publish_demo(runtime, await operator(runtime))).workflow_id
    alice = await customer(runtime, balance="1")
    principal = Principal(alice.account_id, "key_t", "alice")
    inputs = {"n1_image": url, "n2_width": 60}
    request = runs.RunRequest(workflow_id, None, inputs, idempotency_key="bad-url")
    result = await runs.submit_run(runtime.db, principal, request, runtime.policy)
    return alice, result.run.id


async def _run(runtime: Runtime, run_id: str) -> Run:
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, run_id)
    assert run is not None
    return run


async def _assert_failed_once_and_released(
    runtime: Runtime, run_id: str, alice: Customer, code: str
) -> Run:
    run = await _run(runtime, run_id)
    assert (run.status, run.error_code, run.attempt) == ("failed", code, 1), run.error_detail
    assert "input n1_image" in (run.error_detail or "")
    assert run.final_amount == 0
    assert await account_balance(runtime, alice.account_id) == (parse_amount("1"), 0)
    return run


MALFORMED = {
    "http://a..b/x.png": "empty label",
    "http://" + "a" * 64 + ".example/x.png": "longer than 63",
    "http://xn--/x.png": "not a valid IDNA A-label",
}


@pytest.mark.parametrize("url", sorted(MALFORMED))
async def test_malformed_url_fails_the_run_at_once_as_forbidden(runtime: Runtime, url: str):
    alice, run_id = await _submit(runtime, url)
    await drain(runtime)
    run = await _assert_failed_once_and_released(runtime, run_id, alice, "MEDIA_URL_FORBIDDEN")
    assert MALFORMED[url] in (run.error_detail or "")


@pytest.mark.parametrize(
    ("location", "code"),
    [("http://xn--/", "MEDIA_URL_FORBIDDEN"), ("http:\\\\127.0.0.1\\x", "MEDIA_FETCH_FAILED")],
)
async def test_malformed_redirect_fails_the_run_after_one_fetch(
    runtime: Runtime, redirector: HttpServer, location: str, code: str
):
    redirector.routes["/img.png"] = Reply(302, headers=(("Location", location),))
    _allow_loopback(runtime)
    port = redirector._server.sockets[0].getsockname()[1] if redirector._server else 0
    alice, run_id = await _submit(runtime, f"http://127.0.0.1:{port}/img.png")
    await drain(runtime)
    await _assert_failed_once_and_released(runtime, run_id, alice, code)
    assert redirector.requests[0].path == "/img.png"
    assert sum(seen.path == "/img.png" for seen in redirector.requests) == 1


async def test_http_submit_with_a_malformed_redirect_fails_quickly_with_a_media_error(
    runtime: Runtime, redirector: HttpServer
):
    """End to end: HTTP submit on the demo workflow, the embedded worker fetches once, the run
    fails ``MEDIA_URL_FORBIDDEN`` on its first attempt (not re-dispatched when its lease lapsed)
    and the freeze is released."""
    redirector.routes["/img.png"] = Reply(302, headers=(("Location", "http://xn--/"),))
    _allow_loopback(runtime)
    port = redirector._server.sockets[0].getsockname()[1] if redirector._server else 0
    workflow_id = (await publish_demo(runtime, await operator(runtime))).workflow_id
    alice = await customer(runtime, balance="1")
    body = {
        "workflow_id": workflow_id,
        "idempotency_key": "e2e-bad-redirect",
        "inputs": {"n1_image": f"http://127.0.0.1:{port}/img.png", "n2_width": 60},
    }
    async with (
        start_server(runtime, embedded_worker=True) as live,
        httpx.AsyncClient(base_url=live.api_url, timeout=30) as http,
    ):
        submitted = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
        assert submitted.status_code == 200, submitted.text
        run_id = submitted.json()["data"]["run_order_id"]
        execution = await api.wait_status(http, alice, run_id)
        info = await http.get(
            "/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers
        )
    assert execution["status"] == "failed"
    assert execution["error"]["engine_code"] == "MEDIA_URL_FORBIDDEN"
    assert "xn--" in execution["error"]["detail"]
    assert (await _run(runtime, run_id)).attempt == 1  # ended by the first worker to claim it
    bill = info.json()["data"]
    assert parse_amount(bill["final_amount"]) == 0
    assert bill["released_amount"] == bill["quote_amount"]
    assert await account_balance(runtime, alice.account_id) == (parse_amount("1"), 0)
    assert [seen.path for seen in redirector.requests] == ["/img.png"]


class CrashingEngine:
    """An engine with a bug: it raises something no engine error maps."""

    def __init__(self) -> None:
        self.calls = 0

    async def execute(
        self, spec: RunSpec, sink: ProgressSink, interrupt: threading.Event
    ) -> dict[str, NodeResult]:
        self.calls += 1
        raise KeyError("a bug in the engine")


async def test_runner_crash_fails_the_run_at_once_as_an_internal_error(runtime: Runtime):
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package(seconds=0))
    alice = await customer(runtime, balance="1")
    principal = Principal(alice.account_id, "key_t", "alice")
    request = runs.RunRequest(workflow_id, None, {}, idempotency_key="crash")
    run_id = (await runs.submit_run(runtime.db, principal, request, runtime.policy)).run.id
    engine = CrashingEngine()
    worker = Worker(runtime)
    worker.deps = replace(worker.deps, engines={**worker.deps.engines, "local": engine})
    await worker.run_until_idle()
    run = await _run(runtime, run_id)
    assert (run.status, run.error_code, run.attempt) == ("failed", "WORKER_LOST", 1)
    assert run.error_reason == "The run stopped on an internal error."
    assert "KeyError: 'a bug in the engine'" in (run.error_detail or "")
    assert engine.calls == 1
    assert await account_balance(runtime, alice.account_id) == (parse_amount("1"), 0)
