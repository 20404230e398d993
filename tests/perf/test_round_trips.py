"""Database round trips per request through the public HTTP API (issue 17), on both databases.

Counted with SQLAlchemy's engine events (``tests/support/statements.py``): every statement,
BEGIN, COMMIT and ROLLBACK, and pre-pings. The counts are steady state: the caller's API key is
in the authentication cache (a cold key adds one short transaction — BEGIN, SELECT, COMMIT — at
most once a second per key and process; :mod:`wfrun.services.key_cache`), which the fixture
below makes independent of how fast this machine is.

Targets: PostgreSQL submit ≤ 6, replay and authenticated reads ≤ 3 — ``run/execution``
included, in every state of the run (one statement: ``queue.execution_view``); a read of one
statement runs without a transaction (``Database.read``): one round trip. SQLite
(in-process, so "trips" are calls, not network waits): submit ≤ 12 (its writes are separate
statements), reads ≤ 3 but ``run/execution``, which reads its facts one statement each
(``EXECUTION_SQLITE``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from tests.support.factories import (
    Customer,
    customer,
    drain,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.statements import Trips, counting
from wfrun.runtime import Runtime
from wfrun.services import accounts, claims, worker_registry
from wfrun.services.key_cache import KeyCache

SUBMIT = {"postgresql": 6, "sqlite": 12}
READ = 3
ONE_READ = {"postgresql": 1, "sqlite": 3}
"""A read of one statement: on PostgreSQL it runs without a transaction (``Database.read``)."""
EXECUTION_SQLITE = {"queued": 11, "running": 4, "succeeded": 4}
"""SQLite's ``run/execution``: BEGIN, the run, its events, COMMIT; while queued also the
place (2), the lane's worker capacity (3), the revision's typical time (1) and the
account's running count (a capped account)."""


@pytest.fixture(autouse=True)
def warm_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys stay cached for the whole test (steady state, whatever the machine's speed)."""
    monkeypatch.setattr(accounts, "_principals", KeyCache(ttl=3600))


async def _trips(runtime: Runtime, call: Callable[[], Awaitable[httpx.Response]]) -> Trips:
    async with counting(runtime.db) as trips:
        response = await call()
    assert response.status_code == 200, response.text
    return trips


async def _setup(runtime: Runtime, http: httpx.AsyncClient) -> tuple[Customer, dict[str, Any]]:
    owner = await operator(runtime)
    workflow_id = await publish_package(runtime, owner, sleepy_package())
    alice = await customer(runtime, balance="10")
    body = {"workflow_id": workflow_id, "idempotency_key": "warm-up", "inputs": {}}
    await _post(http, alice, body)  # warms the key cache and the connection's statements
    return alice, body


async def _post(http: httpx.AsyncClient, who: Customer, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/workflow/run/submit", json=body, headers=who.headers)


async def test_submit_and_replay_stay_within_their_round_trips(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    alice, body = await _setup(runtime, http)
    first = {**body, "idempotency_key": "counted"}
    submit = await _trips(runtime, lambda: _post(http, alice, first))
    assert submit.round_trips <= SUBMIT[runtime.db.dialect], submit.explain()
    assert submit.transactions == 1, submit.explain()
    replay = await _trips(runtime, lambda: _post(http, alice, first))
    assert replay.round_trips <= READ, replay.explain()


async def test_a_refused_submit_rolls_back_in_the_same_few_trips(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    """Short of balance: 402, one transaction, rolled back (nothing written)."""
    _, body = await _setup(runtime, http)
    poor = await customer(runtime, balance="0.000001", name="poor")
    await http.get("/balance/info", headers=poor.headers)  # its key cached
    async with counting(runtime.db) as trips:
        response = await _post(http, poor, {**body, "idempotency_key": "short"})
    assert response.status_code == 402, response.text
    assert trips.transactions == 1, trips.explain()
    assert trips.rollbacks == 1, trips.explain()
    assert trips.round_trips <= SUBMIT[runtime.db.dialect], trips.explain()


async def test_authenticated_reads_take_at_most_three_round_trips(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    alice, body = await _setup(runtime, http)
    run_id = (await _post(http, alice, body)).json()["data"]["run_order_id"]
    params = {"run_order_id": run_id}
    reads = {
        "balance/info": lambda: http.get("/balance/info", headers=alice.headers),
        "run/info": lambda: http.get("/workflow/run/info", params=params, headers=alice.headers),
        "run/list": lambda: http.get("/workflow/run/list", headers=alice.headers),
    }
    for name, call in reads.items():
        trips = await _trips(runtime, call)
        assert trips.round_trips <= READ, f"{name}: {trips.explain()}"
    for name in ("balance/info", "run/info"):  # one statement; on PostgreSQL no transaction
        trips = await _trips(runtime, reads[name])
        assert trips.round_trips == ONE_READ[runtime.db.dialect], f"{name}: {trips.explain()}"


async def test_the_execution_view_reads_in_one_statement_in_every_state(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    """A succeeded, a running and a queued run (waiting for its account's running-run cap,
    a live worker registered): PostgreSQL reads each in one statement, no transaction."""
    runtime.settings.limits.max_running_runs = 1  # the capped account's count is read too
    alice, body = await _setup(runtime, http)
    await drain(runtime)  # the warm-up run succeeds
    await worker_registry.register_worker(
        runtime.db, worker_id="w", hostname="h", pid=1, concurrency=2
    )
    runs = {"succeeded": await _run_id(http, alice, body)}
    runs["running"] = await _run_id(http, alice, {**body, "idempotency_key": "running"})
    claim = await claims.claim_next(runtime.db, worker_id="w", lease=timedelta(minutes=5))
    assert isinstance(claim, claims.Claim)
    runs["queued"] = await _run_id(http, alice, {**body, "idempotency_key": "queued"})
    for status, run_id in runs.items():
        params = {"run_order_id": run_id}
        call = partial(http.get, "/workflow/run/execution", params=params, headers=alice.headers)
        await call()  # warm: the statement's first use on a connection
        trips = await _trips(runtime, call)
        pg = runtime.db.dialect == "postgresql"
        bound = ONE_READ["postgresql"] if pg else EXECUTION_SQLITE[status]
        assert trips.round_trips <= bound, f"{status}: {trips.explain()}"
        assert len(trips.statements) == 1 or not pg, status
        view = (await call()).json()["data"]
        assert view["status"] == status
        assert (view["queue_info"] is not None) == (status == "queued")
    assert view["queue_info"]["reason"] == (
        "the account is at its running-runs limit (1 of 1 running)"
    )


async def _run_id(http: httpx.AsyncClient, who: Customer, body: dict[str, Any]) -> str:
    """The run of ``body`` (submitted, or the replay's)."""
    return str((await _post(http, who, body)).json()["data"]["run_order_id"])
