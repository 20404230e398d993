"""Load shedding through the HTTP API: past ``limits.max_concurrent_requests`` a request
waits for a turn at most ``max_wait_seconds``, at most ``max_waiting_requests`` of them; any
other is answered 503 ``SERVICE_UNAVAILABLE`` (overloaded) with ``Retry-After`` at once,
having done nothing, and every request let in is served (nothing accepted is lost).

A submit whose body the test holds back keeps the process's one turn busy for as long as
the test wants (no sleeps)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.support import api
from tests.support.factories import (
    customer,
    money_snapshot,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from tests.support.waiting import until_true
from wfrun.api.app import create_app
from wfrun.api.deps import API_PREFIX
from wfrun.api.shedding import Shedding

REASON = "The service is temporarily unavailable."


def overloaded(detail: str) -> dict[str, Any]:
    return api.refusal(REASON, detail, "SERVICE_UNAVAILABLE", 503)


def shedding_of(app: Any) -> Shedding:
    layer = app.middleware_stack
    while not isinstance(layer, Shedding):
        layer = layer.app
    return layer


async def held_body(document: dict[str, Any], gate: asyncio.Event) -> AsyncIterator[bytes]:
    text = json.dumps(document).encode()
    yield text[:10]
    await gate.wait()
    yield text[10:]


async def test_a_flood_is_shed_503_at_once_and_what_was_let_in_is_served(runtime):
    limits = runtime.settings.limits
    limits.max_concurrent_requests, limits.max_waiting_requests = 1, 1
    limits.max_wait_seconds = 0.05
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    alice = await customer(runtime)
    app = create_app(runtime.settings, runtime=runtime)
    server, task, port = await serve_on_loopback(app, lifespan="on")
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base + API_PREFIX, timeout=30) as http:
            gate = asyncio.Event()
            body = {"workflow_id": workflow_id, "idempotency_key": "k1", "inputs": {}}
            holder = asyncio.create_task(
                http.post(
                    "/workflow/run/submit",
                    headers=alice.headers | {"Content-Type": "application/json"},
                    content=held_body(body, gate),
                )
            )
            shed = await until_true(lambda: shedding_of(app), what="the app to start")
            await until_true(lambda: shed.active == 1, what="the submit to hold the turn")
            before = await money_snapshot(runtime)
            late = await http.get("/balance/info", headers=alice.headers)  # waits 0.05 s
            assert late.status_code == 503
            assert late.headers["retry-after"] == "1"
            assert late.json() == overloaded(
                "the server is overloaded: no turn came within 0.05 s (1 requests in "
                "progress on this process); retry shortly"
            )
            limits.max_wait_seconds = 10
            waiter = asyncio.create_task(http.get("/balance/info", headers=alice.headers))
            await until_true(lambda: shed.waiting == 1, what="a request waiting for a turn")
            full = await http.get("/balance/info", headers=alice.headers)  # the line is full
            assert (full.status_code, full.headers["retry-after"]) == (503, "1")
            assert full.json() == overloaded(
                "the server is overloaded: 1 requests in progress and 1 waiting on this "
                "process; retry shortly"
            )
            # Prefer: wait exempts only a submit that waits: not a read, not wait=0
            submit_now = {"Prefer": "wait=0", "Content-Type": "application/json"}
            asked = [
                http.get("/balance/info", headers=alice.headers | {"Prefer": "wait=5"}),
                http.post(
                    "/workflow/run/submit",
                    headers=alice.headers | submit_now,
                    json=body | {"idempotency_key": "k2"},
                ),
            ]
            for refused in [await request for request in asked]:
                assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
            assert (await http.get(base + "/healthz")).status_code == 200  # not an API call
            assert await money_snapshot(runtime) == before  # the refused did nothing
            waits = {"Prefer": "wait=1", "Content-Type": "application/json"}
            waited = await http.post(  # a submit that waits is not counted: it gets through
                "/workflow/run/submit",
                headers=alice.headers | waits,
                json=body | {"idempotency_key": "k3"},
            )
            assert (waited.status_code, waited.headers["preference-applied"]) == (200, "wait=1")
            gate.set()
            submitted, served = await holder, await waiter
            assert submitted.status_code == 200, submitted.text
            assert served.json()["data"]["frozen_amount"] == "0.22000000"
            assert (shed.active, shed.waiting) == (0, 0)
    finally:
        await stop_serving(server, task)
    assert (await money_snapshot(runtime))["counts"]["runs"] == 2
