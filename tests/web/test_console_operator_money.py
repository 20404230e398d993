"""The operator's money pages: a refund (part, then the rest) and a balance correction move
the customer's balance by exactly their amounts, each with its memo in the ledger; refusing
what the books forbid (over-refund, a debit below zero) changes nothing; unpublishing takes a
workflow off the customer's market. Every form needs the session's CSRF token."""

from __future__ import annotations

import re

import pytest

from tests.support.waiting import until
from tests.web.console import World, csrf_of, seed_world, serve_console, signed_in_client
from tests.web.test_console_http import _console_submit
from wfrun.db.runs import find_run
from wfrun.domain.money import format_amount
from wfrun.domain.runs import RunStatus
from wfrun.runtime import Runtime
from wfrun.services import accounts, catalog

START = 10_000_000_000  # 100 CNY


@pytest.fixture
async def world(runtime) -> World:
    return await seed_world(runtime, balance=START)


async def _charged_run(runtime: Runtime, console, world: World) -> tuple[str, int]:
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as c:
        run_id = await _console_submit(c, world)

    async def ended() -> int | None:
        async with runtime.db.transaction() as conn:
            run = await find_run(conn, run_id)
        assert run is not None
        return run.final_amount if run.status is RunStatus.SUCCEEDED else None

    return run_id, await until(ended, what="the run to succeed")


async def _available(runtime: Runtime, account_id: str) -> int:
    return (await accounts.get_account(runtime.db, account_id)).available


async def test_an_operator_refunds_part_then_the_rest_and_no_more(runtime, world: World):
    async with serve_console(runtime, worker=True) as console:
        run_id, charged = await _charged_run(runtime, console, world)
        assert await _available(runtime, world.customer_id) == START - charged
        async with signed_in_client(runtime, console, world.operator_id, "ops@x.com") as boss:
            token = csrf_of((await boss.get("/console/operator/runs")).text)
            url = f"/console/operator/runs/{run_id}/refund"
            unsigned = await boss.post(url, data={"amount": "0.001", "memo": "no token"})
            assert unsigned.status_code == 403
            part = await boss.post(url, data={"csrf_token": token, "amount": "0.001", "memo": "a"})
            assert part.status_code == 303, part.text
            after_part = START - charged + 100_000
            assert await _available(runtime, world.customer_id) == after_part
            rest = await boss.post(url, data={"csrf_token": token, "amount": "", "memo": "b"})
            assert rest.status_code == 303, rest.text
            assert await _available(runtime, world.customer_id) == START
            more = await boss.post(url, data={"csrf_token": token, "amount": "", "memo": "c"})
            assert more.status_code == 400
            assert "refunded in full" in more.text
            listed = await boss.get("/console/operator/runs")
            assert f'href="/console/operator/runs/{run_id}"' in listed.text
            detail = await boss.get(f"/console/operator/runs/{run_id}")
            assert detail.status_code == 200
            assert f'href="/console/operator/accounts/{world.customer_id}"' in detail.text
            final = format_amount(charged)
            assert f'<dd class="amount" data-field="final_amount">{final}</dd>' in detail.text
            assert '<td>a</td><td class="num amount">0.00100000</td>' in detail.text
            assert 'id="run-logs"' in detail.text
    assert await _available(runtime, world.customer_id) == START


async def test_an_operator_corrects_a_balance_but_never_below_zero(runtime, world: World):
    async with (
        serve_console(runtime, worker=False) as console,
        signed_in_client(runtime, console, world.operator_id, "ops@x.com") as boss,
    ):
        url = f"/console/operator/accounts/{world.customer_id}/adjust"
        page = await boss.get(f"/console/operator/accounts/{world.customer_id}")
        assert 'id="adjust-amount"' in page.text
        token = csrf_of(page.text)
        debit = await boss.post(url, data={"csrf_token": token, "amount": "-1.5", "memo": "dup"})
        assert debit.status_code == 303, debit.text
        assert await _available(runtime, world.customer_id) == START - 150_000_000
        credit = await boss.post(url, data={"csrf_token": token, "amount": "0.25", "memo": "x"})
        assert credit.status_code == 303, credit.text
        assert await _available(runtime, world.customer_id) == START - 125_000_000
        too_much = await boss.post(url, data={"csrf_token": token, "amount": "-999", "memo": "y"})
        assert too_much.status_code == 402  # the balance would go below zero
        unsigned = await boss.post(url, data={"amount": "5", "memo": "no token"})
        assert unsigned.status_code == 403
        shown = await boss.get(f"/console/operator/accounts/{world.customer_id}")
        assert '<strong class="amount" id="account-available">98.75000000</strong>' in shown.text
    assert await _available(runtime, world.customer_id) == START - 125_000_000


async def test_an_operator_unpublishes_a_workflow_off_the_market(runtime, world: World):
    async with serve_console(runtime, worker=False) as console:
        async with signed_in_client(runtime, console, world.customer_id, "one@x.com") as one:
            assert world.workflow_id in (await one.get("/console/")).text
        async with signed_in_client(runtime, console, world.operator_id, "ops@x.com") as boss:
            page = await boss.get("/console/operator/workflows")
            url = f"/console/operator/workflows/{world.workflow_id}/unpublish"
            assert (await boss.post(url)).status_code == 403
            done = await boss.post(url, data={"csrf_token": csrf_of(page.text)})
            assert done.status_code == 303
        detail = await catalog.describe(runtime.db, world.workflow_id)
        assert detail.workflow.published_revision_id is None
        async with signed_in_client(runtime, console, world.customer_id, "two@x.com") as two:
            assert world.workflow_id not in (await two.get("/console/")).text


async def test_a_money_form_posted_twice_moves_the_balance_once(runtime, world: World):
    async with (
        serve_console(runtime, worker=False) as console,
        signed_in_client(runtime, console, world.operator_id, "ops@x.com") as boss,
    ):
        page = await boss.get(f"/console/operator/accounts/{world.customer_id}")
        keys = re.findall(r'name="form_key" value="([^"]+)"', page.text)
        assert len(keys) == 2
        assert keys[0] != keys[1]
        base = f"/console/operator/accounts/{world.customer_id}"
        token = csrf_of(page.text)
        topup = {"csrf_token": token, "amount": "12.5", "memo": "t", "form_key": keys[0]}
        for _ in range(2):
            assert (await boss.post(f"{base}/topup", data=topup)).status_code == 303
        assert await _available(runtime, world.customer_id) == START + 1_250_000_000
        adjust = {"csrf_token": token, "amount": "-2.5", "memo": "fix", "form_key": keys[1]}
        for _ in range(2):
            assert (await boss.post(f"{base}/adjust", data=adjust)).status_code == 303
        assert await _available(runtime, world.customer_id) == START + 1_000_000_000
        other = adjust | {"amount": "-3"}  # the same key for another change: refused
        assert (await boss.post(f"{base}/adjust", data=other)).status_code == 400
        fresh = await boss.get(base)
        again = re.findall(r'name="form_key" value="([^"]+)"', fresh.text)
        topup |= {"form_key": again[0]}  # a new render, a new key: a second top-up
        assert (await boss.post(f"{base}/topup", data=topup)).status_code == 303
        assert await _available(runtime, world.customer_id) == START + 2_250_000_000
