"""Money through the HTTP API, to the 1e-8 CNY, on both databases.

Every amount a run's bill shows (``compute_cost``, ``external_model_cost``, ``final_amount``,
``released_amount``), every balance it moves and every bill it leaves is computed here
independently (``tests/support/money.py``) and compared exactly. The engine time is the test's:
the ComfyUI stand-in's clock is stopped and the prompt held until the test advanced the clock,
so ComfyUI reports exactly the milliseconds chosen here; Seedance usage is whatever the Ark
stand-in is told to report. ``tests/integration/test_mutants.py`` proves these tests fail when
settlement drops the fixed fee or never charges a consented external shortfall.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from tests.seedance.ark_standin import ArkStandin, TaskPlan
from tests.seedance.conftest import PUBLIC_BASE, seedance_settings
from tests.support import api
from tests.support import money as m
from tests.support.factories import Customer, customer, drain, operator, sleepy_package
from tests.support.money import cny
from wfrun.config import Settings
from wfrun.domain.money import format_amount
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances
from wfrun.services.claims import engine_prompt_id

FEE, PER_SECOND, ESTIMATED_S = cny("0.37"), cny("0.01234567"), 20
QUOTE = FEE + PER_SECOND * ESTIMATED_S  # 0.6169134


@pytest.fixture
def ark() -> Iterator[ArkStandin]:
    server = ArkStandin().launch()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def settings(settings: Settings, ark: ArkStandin) -> Settings:
    """The suite's settings (both databases) with Seedance on the Ark stand-in."""
    return settings.model_copy(
        update={"public_base_url": PUBLIC_BASE, "seedance": seedance_settings(ark, None)}
    )


@pytest.fixture
async def comfy(runtime: Runtime, standin: ComfyStandin) -> ComfyStandin:
    """The ComfyUI stand-in with its clock stopped, registered as an instance; the runtime's
    engine given the test timings."""
    await runtime.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    runtime.engines["comfyui"] = ComfyUIEngine("wfrun-money", settings=FAST)
    await instances.add_instance(runtime.db, url=standin.base_url, capacity=1, labels={})
    standin.clock.stop()
    return standin


async def _timed_workflow(rt: Runtime) -> str:
    """A ComfyUI workflow priced 0.37 + 0.01234567/s, estimated at 20 s."""
    package = sleepy_package(seconds=0)
    package.update(engine="comfyui", slug="priced")
    package["pricing"] = {
        "fixed_fee": format_amount(FEE),
        "price_per_second": format_amount(PER_SECOND),
        "estimated_seconds": ESTIMATED_S,
    }
    result = await catalog.import_package(
        rt.db, owner_id=await operator(rt), document=package, publish=True
    )
    return result.workflow_id


async def _run_for(
    rt: Runtime, http: httpx.AsyncClient, comfy: ComfyStandin, who: Customer, engine_ms: int
) -> str:
    """Submits a run that ComfyUI executes in exactly ``engine_ms`` by its own clock."""
    workflow_id = await _timed_workflow(rt)
    await comfy.hold(running=True)
    run_id: str = (await api.submit(http, who, workflow_id, "timed"))["run_order_id"]
    async with api.running_worker(rt):
        await comfy.wait_held(engine_prompt_id(run_id))
        comfy.clock.advance(engine_ms)
        await comfy.release()
        await api.wait_status(http, who, run_id)
    return run_id


async def _assert_books(
    http: httpx.AsyncClient, who: Customer, run_id: str, bill: m.Bill, *, start: int
) -> None:
    """The run's bill, the customer's balance and bill list show exactly ``bill``."""
    m.assert_bill(await api.info(http, who, run_id), bill)
    shown = await api.balance(http, who)
    assert (shown["available_amount"], shown["frozen_amount"]) == (
        format_amount(start - bill.final),
        format_amount(0),
    )
    charged = {b["run_order_id"]: b["amount_exact"] for b in await api.bills(http, who)}
    assert charged == ({run_id: format_amount(bill.final)} if bill.final else {})


async def test_success_charges_the_fee_plus_the_engine_seconds(runtime, http, comfy):
    alice = await customer(runtime, balance="10")
    run_id = await _run_for(runtime, http, comfy, alice, engine_ms=12_345)
    view = await api.execution(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]
    assert view["actual_execution_duration_sec"] == 12.345  # ComfyUI's clock, not the worker's
    # 0.37 + 0.01234567 × 12.345 = 0.37 + 0.15240729615 → 0.52240730 (rounded once, half up)
    bill = m.success(quote=QUOTE, fixed_fee=FEE, price_per_second=PER_SECOND, execution_ms=12_345)
    assert (bill.final, bill.released) == (cny("0.52240730"), cny("0.09450610"))
    await _assert_books(http, alice, run_id, bill, start=cny("10"))


async def test_a_run_longer_than_its_estimate_is_charged_the_shortfall(runtime, http, comfy):
    alice = await customer(runtime, balance="10")
    run_id = await _run_for(runtime, http, comfy, alice, engine_ms=61_001)
    bill = m.success(quote=QUOTE, fixed_fee=FEE, price_per_second=PER_SECOND, execution_ms=61_001)
    # 0.37 + 0.01234567 × 61.001 = 1.12309822 > the quote of 0.6169134: nothing released,
    # the difference comes out of the available balance
    assert (bill.final, bill.released) == (cny("1.12309822"), 0)
    await _assert_books(http, alice, run_id, bill, start=cny("10"))


async def test_a_shortfall_never_takes_the_balance_below_zero(runtime, http, comfy):
    """Issue 16: with nothing available beyond its freeze and no credit limit (the default),
    the same overrun is charged its freeze and no more; the operator absorbs the rest."""
    alice = await customer(runtime, balance=format_amount(QUOTE))
    run_id = await _run_for(runtime, http, comfy, alice, engine_ms=61_001)
    info = await api.info(http, alice, run_id)
    assert (info["final_amount"], info["released_amount"], info["error_code"]) == (
        format_amount(QUOTE),
        format_amount(0),
        "COST_LIMIT_REACHED",
    )
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == (format_amount(0),) * 2


async def test_cancel_while_running_charges_only_the_seconds_used(runtime, http, comfy):
    alice = await customer(runtime, balance="10")
    workflow_id = await _timed_workflow(runtime)
    await comfy.hold(running=True)
    run_id = (await api.submit(http, alice, workflow_id, "cancelled"))["run_order_id"]
    async with api.running_worker(runtime):
        await comfy.wait_held(engine_prompt_id(run_id))
        comfy.clock.advance(3_210)  # it executes 3.21 s by ComfyUI's clock, then is stopped
        assert (await api.cancel(http, alice, run_id))["cancel_outcome"] == "cancel_requested"
        view = await api.wait_status(http, alice, run_id)
    assert view["status"] == "cancelled"
    # the engine time ComfyUI measured until the stop, at the price per second; no fixed fee
    assert view["actual_execution_duration_sec"] == 3.21
    used = m.cancelled_running(quote=QUOTE, price_per_second=PER_SECOND, execution_ms=3_210)
    assert used.final == cny("0.03962960")  # 0.01234567 × 3.21 = 0.0396296007
    await _assert_books(http, alice, run_id, used, start=cny("10"))


async def test_cancel_while_queued_releases_the_whole_quote(runtime, http, comfy):
    alice = await customer(runtime, balance="1")
    workflow_id = await _timed_workflow(runtime)
    run_id = (await api.submit(http, alice, workflow_id, "never"))["run_order_id"]
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == (
        format_amount(cny("1") - QUOTE),
        format_amount(QUOTE),
    )
    assert (await api.cancel(http, alice, run_id))["cancel_outcome"] == "cancelled"
    await drain(runtime)
    await _assert_books(http, alice, run_id, m.released(QUOTE), start=cny("1"))
    assert comfy.calls("POST", "/prompt") == []


# ---- external model cost (Seedance on the Ark stand-in) -------------------------------------

SEEDANCE_FEE = cny("0.0321")
TOKEN_PRICE = cny("12.3456789")  # per million output tokens, the package's own price
QUOTED_TOKENS = 108_900  # 720p 16:9, 5 s: ⌈1280 × 720 × 121 / 1024⌉


def _tokens_cost(tokens: int) -> int:
    return m.half_up(tokens * TOKEN_PRICE, 1_000_000)


def _seedance_package() -> dict[str, Any]:
    text = resources.files("wfrun").joinpath("demo/seedance_video.json").read_text()
    package: dict[str, Any] = json.loads(text)
    price = {"per_million": "12.3456789", "per_million_with_video": "12.3456789"}
    package["pricing"] |= {
        "fixed_fee": format_amount(SEEDANCE_FEE),
        "token_prices": {"doubao-seedance-2-0-fast-260128": price},
    }
    return package


VIDEO = {
    "prompt": "一只小猫对着镜头打哈欠",
    "generation_category": "text_to_video",
    "resolution": "720p",
    "ratio": "16:9",
    "duration": 5,
}


@pytest.mark.parametrize(
    ("reported_tokens", "consent"),
    [(150_000, True), (150_000, False), (90_000, True), (90_000, False)],
    ids=[
        "over-quote-with-consent",
        "over-quote-without",
        "under-quote-with",
        "under-quote-without",
    ],
)
async def test_external_cost_is_settled_by_the_usage_ark_reports(
    runtime, http, ark, reported_tokens, consent
):
    """Over the quote, only a customer who accepted the risk pays the difference (charged
    from the balance); without consent the charge stops at the quoted external cost and the
    operator absorbs the rest. Under the quote the surplus is released either way."""
    document = _seedance_package()
    workflow = await catalog.import_package(
        runtime.db, owner_id=await operator(runtime), document=document, publish=True
    )
    alice = await customer(runtime, balance="20")
    quoted_external = _tokens_cost(QUOTED_TOKENS)
    quote = SEEDANCE_FEE + quoted_external
    priced = await api.quote(http, alice, workflow.workflow_id, VIDEO)
    assert priced["quote_amount"] == format_amount(quote)
    assert priced["breakdown"]["external_model"] == format_amount(quoted_external)

    ark.next_task(TaskPlan(completion_tokens=reported_tokens))
    submitted = await api.submit(
        http, alice, workflow.workflow_id, "video", VIDEO, accept_external_cost_risk=consent
    )
    await drain(runtime)
    run_id = submitted["run_order_id"]
    assert (await api.execution(http, alice, run_id))["status"] == "succeeded"
    bill = m.Bill(  # the platform fee as quoted, plus the external cost charged
        quote,
        SEEDANCE_FEE,
        _tokens_cost(reported_tokens)
        if consent
        else min(_tokens_cost(reported_tokens), quoted_external),
    )
    await _assert_books(http, alice, run_id, bill, start=cny("20"))
    if reported_tokens > QUOTED_TOKENS:
        assert bill.released == 0
        assert (bill.final > quote) is consent
