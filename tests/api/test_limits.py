"""Run quotas and operator overrides through the HTTP API and the CLI: a submit beyond the
account's queued-run cap is refused 429 ``TOO_MANY_QUEUED_RUNS`` with ``Retry-After`` and
freezes nothing, concurrent submits never pass the cap, and ``wfrun accounts limits``
overrides an account's limits (the API picks them up from its cache) or clears them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from tests.api.test_rate_limits import Clock
from tests.support import api
from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    money_snapshot,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.money import cny
from tests.support.waiting import until_true
from wfrun.runtime import Runtime

QUOTE = cny("0.11")  # the sleepy package: 0.01 fee + 10 estimated seconds at 0.01/s
REFUSED = "Too many queued runs for this account."


async def sleepy(rt: Runtime) -> str:
    return await publish_package(rt, await operator(rt), sleepy_package())


async def post_submit(
    http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str
) -> httpx.Response:
    body = {"workflow_id": workflow_id, "idempotency_key": key, "inputs": {}}
    return await http.post("/workflow/run/submit", headers=who.headers, json=body)


def queue_refusal(waiting: int, cap: int) -> dict[str, Any]:
    detail = (
        f"the account has {waiting} runs waiting in the queue and may have at most {cap} "
        "(limits.max_queued_runs); submit again when one has started"
    )
    return api.refusal(REFUSED, detail, "TOO_MANY_QUEUED_RUNS", 429)


async def test_a_submit_beyond_the_queued_cap_is_refused_429_and_freezes_nothing(runtime, http):
    runtime.settings.limits.max_queued_runs = 2
    workflow_id = await sleepy(runtime)
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    first = (await api.submit(http, alice, workflow_id, "k1"))["run_order_id"]
    await api.submit(http, alice, workflow_id, "k2")
    before = await money_snapshot(runtime)
    response = await post_submit(http, alice, workflow_id, "k3")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"  # api.retry_after_seconds
    assert response.json() == queue_refusal(2, 2)
    assert await money_snapshot(runtime) == before  # no run, no job, no freeze, no entry
    assert (await api.submit(http, alice, workflow_id, "k1"))["run_order_id"] == first  # replay
    await api.submit(http, bob, workflow_id, "b1")  # another account has its own cap
    await api.cancel(http, alice, first)  # a place frees: the refused submit goes through now
    await api.submit(http, alice, workflow_id, "k3")
    assert await account_balance(runtime, alice.account_id) == (cny("10") - 2 * QUOTE, 2 * QUOTE)


async def test_concurrent_submits_never_pass_the_queued_cap(runtime, http):
    runtime.settings.limits.max_queued_runs = 3
    workflow_id = await sleepy(runtime)
    alice = await customer(runtime)
    answers = await asyncio.gather(
        *(post_submit(http, alice, workflow_id, f"k{i}") for i in range(8))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 3 + [429] * 5, [r.text for r in answers if r.status_code != 200]
    assert (await money_snapshot(runtime))["counts"]["runs"] == 3
    assert await account_balance(runtime, alice.account_id) == (cny("10") - 3 * QUOTE, 3 * QUOTE)


def limits_json(invoke: Any, *args: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(invoke("accounts", "limits", *args, "--json").output)
    return shown


async def test_cli_overrides_take_effect_in_the_api_and_clear(invoke, runtime, http):
    runtime.settings.limits.overrides_refresh_seconds = 0.05
    runtime.settings.limits.max_queued_runs = 5
    clock = Clock()
    runtime.rates.clock = clock
    workflow_id = await sleepy(runtime)
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    account = alice.account_id
    shown = await asyncio.to_thread(limits_json, invoke, account)
    assert shown == {
        "account_id": account,
        "requests_per_second": None,
        "burst": None,
        "max_queued_runs": 5,
        "max_running_runs": None,
        "overridden": [],
    }
    args = ("--max-queued-runs", "1", "--requests-per-second", "2", "--burst", "3")
    shown = await asyncio.to_thread(limits_json, invoke, account, *args)
    assert shown | {"overridden": sorted(shown["overridden"])} == {
        "account_id": account,
        "requests_per_second": 2.0,
        "burst": 3,
        "max_queued_runs": 1,
        "max_running_runs": None,
        "overridden": ["burst", "max_queued_runs", "requests_per_second"],
    }
    await until_true(lambda: account in runtime.limits.overrides, what="the override cached")
    await api.submit(http, alice, workflow_id, "k1")
    assert (await post_submit(http, alice, workflow_id, "k2")).json() == queue_refusal(1, 1)
    assert (await http.get("/balance/info", headers=alice.headers)).status_code == 200
    assert (await http.get("/balance/info", headers=alice.headers)).status_code == 429  # 3 used
    await api.submit(http, bob, workflow_id, "b1")  # bob keeps the defaults
    await api.submit(http, bob, workflow_id, "b2")
    text = await asyncio.to_thread(invoke, "accounts", "limits", account)
    assert text.output.splitlines() == [
        "requests_per_second: 2 (override)",
        "burst: 3 (override)",
        "max_queued_runs: 1 (override)",
        "max_running_runs: unlimited",
    ]
    cleared = await asyncio.to_thread(limits_json, invoke, account, "--clear")
    assert (cleared["overridden"], cleared["max_queued_runs"]) == ([], 5)
    await until_true(lambda: account not in runtime.limits.overrides, what="the override gone")
    await api.submit(http, alice, workflow_id, "k2")  # the default cap (5) and no rate again
    assert await account_balance(runtime, alice.account_id) == (cny("10") - 2 * QUOTE, 2 * QUOTE)


def test_cli_refuses_an_unknown_account_and_a_bad_value(invoke):
    missing = invoke("accounts", "limits", "acct_missing", "--burst", "2", code=1)
    assert "acct_missing" in missing.output
    bad = invoke("accounts", "limits", "acct_missing", "--max-running-runs", "0", code=2)
    assert "--max-running-runs" in bad.output


@contextmanager
def counting_statements(rt: Runtime) -> Iterator[list[str]]:
    """The statements the runtime's database runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = rt.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_queued_cap_costs_a_submit_one_statement_and_none_when_unset(runtime, http):
    workflow_id = await sleepy(runtime)
    alice = await customer(runtime)
    await api.submit(http, alice, workflow_id, "warm")
    with counting_statements(runtime) as uncapped:
        await api.submit(http, alice, workflow_id, "k1")
    runtime.settings.limits.max_queued_runs = 10
    with counting_statements(runtime) as capped:
        await api.submit(http, alice, workflow_id, "k2")
    # The process's background loops (stream poller, overrides refresh) run statements too:
    # compare the count of an account's waiting jobs, which only the cap runs.
    assert [s for s in uncapped if _waiting_count(s)] == []
    assert len([s for s in capped if _waiting_count(s)]) == 1


def _waiting_count(statement: str) -> bool:
    text = " ".join(statement.split())
    return text.startswith("SELECT count(*)") and "FROM jobs WHERE jobs.account_id" in text
