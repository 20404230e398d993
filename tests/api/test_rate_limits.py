"""Per-key request rates through the HTTP API: 429 ``RATE_LIMITED`` with ``Retry-After`` in
the envelope, nothing done for a refused request, and one key's budget shared by two API
processes on one database (each its own runtime and server, as two replicas are).

The limiter's clock is a stand-in the test advances (no sleeps); the processes exchange
counts when the test calls ``sync`` (their background loops may exchange too: the outcome is
the same whichever exchanges first)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.support import api
from tests.support.factories import (
    Customer,
    customer,
    money_snapshot,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.server import start_server
from tests.support.waiting import until
from wfrun.clock import utcnow
from wfrun.db import limits as limits_db
from wfrun.db.database import Database
from wfrun.runtime import Runtime, build_runtime
from wfrun.services.rate_limits import RateLimiter


class Clock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited(rt: Runtime, clock: Clock, *, rate: float, burst: int) -> None:
    rt.settings.limits.requests_per_second = rate
    rt.settings.limits.burst = burst
    rt.rates.clock = clock


async def balance_status(http: httpx.AsyncClient, who: Customer) -> int:
    return (await http.get("/balance/info", headers=who.headers)).status_code


def refused(detail: str, retry_after: str) -> tuple[dict[str, Any], str]:
    reason = "Too many requests for this API key."
    return api.refusal(reason, detail, "RATE_LIMITED", 429), retry_after


def answer(response: httpx.Response) -> tuple[dict[str, Any], str | None]:
    assert response.status_code == 429, response.text
    return response.json(), response.headers.get("retry-after")


async def test_a_key_over_its_rate_is_refused_429_with_retry_after_and_nothing_done(runtime, http):
    clock = Clock()
    limited(runtime, clock, rate=1, burst=2)
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    assert [await balance_status(http, alice) for _ in range(2)] == [200, 200]  # the burst
    before = await money_snapshot(runtime)
    body = {"workflow_id": workflow_id, "idempotency_key": "k1", "inputs": {}}
    response = await http.post("/workflow/run/submit", headers=alice.headers, json=body)
    detail = (
        "this API key may make 1 requests a second (burst 2), over all API processes; retry in 1 s"
    )
    assert answer(response) == refused(detail, "1")
    assert await money_snapshot(runtime) == before  # nothing frozen, no run, no job
    assert await balance_status(http, bob) == 200  # another key has its own budget
    clock.now += 0.5  # half a token: still refused, and told to wait the other half (1 s)
    assert answer(await http.get("/balance/info", headers=alice.headers))[1] == "1"
    clock.now += 0.5
    await api.submit(http, alice, workflow_id, "k1")  # a token again: the submit goes through
    assert (await money_snapshot(runtime))["counts"]["runs"] == 1


async def test_without_a_rate_every_request_is_admitted(runtime, http):
    alice = await customer(runtime)
    assert [await balance_status(http, alice) for _ in range(30)] == [200] * 30
    assert runtime.rates.buckets == {}  # nothing counted, nothing to exchange


@asynccontextmanager
async def replica(runtime: Runtime) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A second API process on the same database: its own runtime, buckets and server."""
    other = await build_runtime(runtime.settings, migrate=False)
    try:
        async with (
            start_server(other) as live,
            httpx.AsyncClient(base_url=live.api_url, timeout=30) as http,
        ):
            yield other, http
    finally:
        await other.close()


async def test_two_api_processes_share_one_keys_budget_through_the_database(runtime, http):
    clock = Clock()
    limited(runtime, clock, rate=1, burst=2)
    alice = await customer(runtime)
    async with replica(runtime) as (other, http_b):
        other.rates.clock = clock
        assert await balance_status(http_b, alice) == 200  # B: one token left
        await other.rates.sync(other.db)
        assert [await balance_status(http, alice) for _ in range(3)] == [200, 200, 429]
        await runtime.rates.sync(runtime.db)  # A adds its 2 to the key's counter
        await other.rates.sync(other.db)  # B learns of them: its one token is spent twice
        response = await http_b.get("/balance/info", headers=alice.headers)
        detail = (
            "this API key may make 1 requests a second (burst 2), over all API processes; "
            "retry in 2 s"
        )
        assert answer(response) == refused(detail, "2")  # alone, B would have admitted it
        clock.now += 2  # B's debt is paid: one token each side again
        assert await balance_status(http_b, alice) == 200
        assert await balance_status(http, alice) == 200
        await other.rates.sync(other.db)
        await runtime.rates.sync(runtime.db)
        assert await balance_status(http_b, alice) == 429
        assert await balance_status(http, alice) == 429
    async with runtime.db.transaction() as conn:
        counted = await limits_db.read_consumption(conn, list(runtime.rates.buckets))
    assert list(counted.values()) == [5]  # every admitted request, from both processes


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_processes_adding_the_same_keys_in_other_orders_do_not_deadlock(
    runtime, database_url
):
    """Each process meets keys in its own order; the counters' ``UPSERT`` must lock them in
    one order, or two exchanges at once deadlock (one fails after ``deadlock_timeout``)."""
    clock = Clock()
    limited(runtime, clock, rate=100, burst=100)
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    here = RateLimiter(runtime.limits, clock=clock)
    here.admit("key_b", bob.account_id)  # met b first, then a
    here.admit("key_a", alice.account_id)
    other = Database(database_url)
    try:
        async with other.transaction(write=True) as conn:  # the other process's exchange
            assert await limits_db.add_consumption(conn, {"key_a": 1}, utcnow()) == {"key_a": 1}
            exchange = asyncio.create_task(here.sync(runtime.db))
            await until(lambda: _waiting_on_a_lock(other), what="the exchange to wait for key_a")
            assert await limits_db.add_consumption(conn, {"key_b": 1}, utcnow()) == {"key_b": 1}
        await exchange
    finally:
        await other.dispose()
    async with runtime.db.transaction() as conn:
        counted = await limits_db.read_consumption(conn, ["key_a", "key_b"])
    assert counted == {"key_a": 2, "key_b": 2}


async def _waiting_on_a_lock(db: Database) -> bool:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with db.transaction() as conn:
        return bool((await conn.execute(query)).scalar_one())


async def test_a_slow_keys_bucket_is_not_forgotten_before_it_is_full_again(runtime, http):
    """At 1 request a minute, a minute idle refills one token of two: forgetting the bucket
    then (and meeting the key again with a full one) would admit a request too many."""
    clock = Clock()
    limited(runtime, clock, rate=1 / 60, burst=2)
    alice = await customer(runtime)
    assert [await balance_status(http, alice) for _ in range(2)] == [200, 200]
    clock.now += 61  # idle past rate_limits.IDLE_SECONDS: one token back, not two
    await runtime.rates.sync(runtime.db)  # the two requests go to the shared counter
    await runtime.rates.sync(runtime.db)  # nothing pending: an idle key may be forgotten
    assert [await balance_status(http, alice) for _ in range(2)] == [200, 429]
