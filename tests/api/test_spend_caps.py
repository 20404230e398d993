"""Issue 16, money caps through the HTTP API: ``max_cost`` refuses a quote above it (nothing
frozen) and stops a running run that reaches it, settled at exactly ``max_cost``; without
``max_cost`` an overrunning run never takes the balance below minus the operator's credit
limit (``billing.credit_limit``). Exact amounts; the ledger invariants are checked after every
test by the ``runtime`` fixture (what ``wfrun ledger check`` runs).

The running run is a TestSleep that reports progress every ~1 % of the run and costs 1 CNY per
second: it accrues past its ceiling within a second of starting, whatever the machine's load,
and the worker stops it at the next progress point; its charge is then clamped to the ceiling
at settlement, so the amounts are exact however late the stop came.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import api
from tests.support.factories import (
    customer,
    money_snapshot,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.money import cny
from wfrun.config import BillingSettings, Settings
from wfrun.domain.money import format_amount
from wfrun.runtime import Runtime
from wfrun.services import accounts, spending

QUOTE = cny("1.01")  # fixed fee 0.01 + 1 CNY/s × 1 estimated second


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shared test settings, with ``billing.credit_limit`` from an indirect parameter."""
    credit = getattr(request, "param", "0")
    return settings.model_copy(update={"billing": BillingSettings(credit_limit=credit)})


def _costly(seconds: float = 30) -> dict[str, Any]:
    package = sleepy_package(seconds=seconds, price_per_second="1")
    package["pricing"]["estimated_seconds"] = 1
    return package


async def _workflow(rt: Runtime, seconds: float = 30) -> str:
    return await publish_package(rt, await operator(rt), _costly(seconds))


async def _refused(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(path, headers=headers, json=body)
    error: dict[str, Any] = response.json()["data"]["error"]
    assert response.status_code == error["status_code"], response.text
    return error


async def test_a_quote_above_max_cost_is_refused_and_nothing_is_frozen(runtime, http):
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, balance="10")
    before = await money_snapshot(runtime)
    body = {"workflow_id": workflow_id, "inputs": {}, "max_cost": "1.00999999"}
    for path, extra in (
        ("/workflow/run/quote", {}),
        ("/workflow/run/submit", {"idempotency_key": "k"}),
    ):
        error = await _refused(http, path, alice.headers, body | extra)
        assert (error["status_code"], error["engine_code"]) == (400, "MAX_COST_EXCEEDED")
        assert "quote of 1.01000000 CNY is above max_cost 1.00999999 CNY" in error["detail"]
    assert await money_snapshot(runtime) == before
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == ("10.00000000", "0.00000000")
    at_cap = await api.quote(http, alice, workflow_id, {}, max_cost="1.01")
    assert at_cap["quote_amount"] == format_amount(QUOTE)  # a quote equal to max_cost is fine


@pytest.mark.parametrize("bad", ["abc", "-1", "0.000000001", "1e3"])
async def test_a_malformed_max_cost_is_a_400_that_changes_nothing(runtime, http, bad):
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, balance="10")
    before = await money_snapshot(runtime)
    body = {"workflow_id": workflow_id, "inputs": {}, "idempotency_key": "k", "max_cost": bad}
    error = await _refused(http, "/workflow/run/submit", alice.headers, body)
    assert (error["engine_code"], "max_cost" in error["detail"]) == ("INVALID_PARAMETER", True)
    assert await money_snapshot(runtime) == before


async def _stopped(http: httpx.AsyncClient, who: Any, run_id: str) -> dict[str, Any]:
    ended = await api.wait_status(http, who, run_id)
    assert ended["status"] == "cancelled", ended
    assert ended["error"]["engine_code"] == "COST_LIMIT_REACHED"
    return ended


async def test_a_running_run_is_stopped_at_max_cost_and_charged_exactly_it(runtime, http):
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, balance="10")
    async with api.running_worker(runtime):
        run = await api.submit(http, alice, workflow_id, "capped", max_cost="1.5")
        ended = await _stopped(http, alice, run["run_order_id"])
    assert ended["error"]["status_code"] == 402
    assert "max_cost of 1.50000000 CNY" in ended["error"]["detail"]
    assert ended["progress_percent"] < 100  # stopped mid-run, not at its end
    info = await api.info(http, alice, run["run_order_id"])
    assert (info["run_status"], info["final_amount"]) == ("cancelled", "1.50000000")
    assert info["released_amount"] == "0.00000000"  # 1.50 ≥ the 1.01 frozen
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == ("8.50000000", "0.00000000")


def _saves_early() -> dict[str, Any]:
    """The costly package with an output saved before its sleep: EmptyImage → SaveImage, and
    EmptyImage → TestSleep → ImageInvert → SaveImage (node 2 runs before the sleep)."""
    package = _costly()
    package["slug"] = "saves-early"
    package["graph"] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a"}},
        "3": {"class_type": "TestSleep", "inputs": {"value": ["1", 0], "seconds": 30}},
        "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "b"}},
    }
    package["inputs"] = []
    package["outputs"] = [
        {"key": "n2_images", "type": "image", "multiple": True},
        {"key": "n5_images", "type": "image", "multiple": True},
    ]
    return package


async def test_a_run_stopped_at_max_cost_keeps_the_outputs_it_made_before_the_stop(runtime, http):
    workflow_id = await publish_package(runtime, await operator(runtime), _saves_early())
    alice = await customer(runtime, balance="10")
    async with api.running_worker(runtime):
        run = await api.submit(http, alice, workflow_id, "early", max_cost="1.5")
        ended = await _stopped(http, alice, run["run_order_id"])
    assert len(ended["outputs"]["n2_images"]) == 1  # saved before the stop: kept
    assert ended["outputs"]["n5_images"] == []  # never reached
    image = await http.get(ended["outputs"]["n2_images"][0])
    assert (image.status_code, image.content[:8]) == (200, b"\x89PNG\r\n\x1a\n")
    info = await api.info(http, alice, run["run_order_id"])
    assert (info["run_status"], info["final_amount"]) == ("cancelled", "1.50000000")


@pytest.mark.parametrize(
    ("settings", "final", "available"),
    [("0", "2.00000000", "0.00000000"), ("0.5", "2.50000000", "-0.50000000")],
    indirect=["settings"],
)
async def test_an_overrunning_run_never_takes_the_balance_below_minus_the_credit_limit(
    runtime, http, final, available
):
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, balance="2")
    async with api.running_worker(runtime):
        run = await api.submit(http, alice, workflow_id, "overrun")
        ended = await _stopped(http, alice, run["run_order_id"])
    assert "credit limit" in ended["error"]["detail"]
    info = await api.info(http, alice, run["run_order_id"])
    assert info["final_amount"] == final
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == (available, "0.00000000")


@pytest.mark.parametrize("settings", ["0.25"], indirect=True)
async def test_a_short_run_costing_more_than_the_balance_is_clamped_at_settlement(runtime, http):
    """100 CNY/s for a 0.2 s sleep: far past the balance before any progress point could stop
    it; the settlement still never charges past freeze + available + credit limit."""
    package = sleepy_package(seconds=0.2, price_per_second="100")
    package["pricing"]["estimated_seconds"] = 0
    workflow_id = await publish_package(runtime, await operator(runtime), package)
    alice = await customer(runtime, balance="0.5")
    async with api.running_worker(runtime):
        run = await api.submit(http, alice, workflow_id, "short")
        ended = await api.wait_status(http, alice, run["run_order_id"])
    assert ended["error"]["engine_code"] == "COST_LIMIT_REACHED", ended
    info = await api.info(http, alice, run["run_order_id"])
    assert info["final_amount"] == "0.75000000"  # 0.01 frozen + 0.49 available + 0.25 credit
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == ("-0.25000000", "0.00000000")


async def test_a_running_run_is_stopped_at_its_keys_spend_limit_and_the_key_spends_exactly_it(
    runtime, http
):
    """A key limited to 2.00 in total, one run frozen at 1.01 that would run to 30.01: the
    run is charged what the key has left (2.00: its own freeze counts against the limit,
    not on top of it), and the key's counter ends at frozen 0, spent 2.00."""
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, balance="10")
    key_id = (await accounts.list_keys(runtime.db, alice.account_id))[0].id
    await spending.set_key_limit(runtime.db, key_id, cny("2"), "total")
    async with api.running_worker(runtime):
        run = await api.submit(http, alice, workflow_id, "keyed")
        ended = await _stopped(http, alice, run["run_order_id"])
    assert "key spend limit of 2.00000000 CNY" in ended["error"]["detail"]
    info = await api.info(http, alice, run["run_order_id"])
    assert (info["final_amount"], info["released_amount"]) == ("2.00000000", "0.00000000")
    view = (await spending.key_limits(runtime.db, [key_id]))[key_id]
    assert (view.frozen, view.spent) == (0, cny("2"))
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == ("8.00000000", "0.00000000")
