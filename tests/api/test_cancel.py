"""POST /workflow/run/cancel: queued, running, twice, and after the end."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support import api
from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    drain,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.money import assert_bill, cancelled_running, cny, execution_ms
from tests.support.waiting import DEADLINE, until
from wfrun.domain.money import parse_amount
from wfrun.runtime import Runtime
from wfrun.workers.worker import Worker

LONG_NODE = 50.0
"""Seconds a node sleeps when only a cancel may end it: longer than any wait of a test
(``DEADLINE``), within the sleepy package's 60 s time limit."""
assert LONG_NODE > DEADLINE


async def _cancel(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    response = await http.post(
        "/workflow/run/cancel", json={"run_order_id": run_id}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _execution(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    response = await http.get(
        "/workflow/run/execution", params={"run_order_id": run_id}, headers=who.headers
    )
    data: dict[str, Any] = response.json()["data"]
    return data


async def _submit_sleepy(
    runtime: Runtime, http: httpx.AsyncClient, seconds: float, balance: str = "1"
) -> tuple[Customer, str]:
    workflow_id = await publish_package(
        runtime, await operator(runtime), sleepy_package(seconds=seconds)
    )
    alice = await customer(runtime, balance=balance)
    response = await http.post(
        "/workflow/run/submit",
        json={"workflow_id": workflow_id, "idempotency_key": "c", "inputs": {}},
        headers=alice.headers,
    )
    return alice, response.json()["data"]["run_order_id"]


async def test_cancel_queued_releases_everything_and_it_never_runs(runtime, http):
    alice, run_id = await _submit_sleepy(runtime, http, seconds=0.1)
    data = await _cancel(http, alice, run_id)
    assert data["cancel_outcome"] == "cancelled"
    assert data["run_status"] == "cancelled"
    assert data["freeze_status"] == "released"
    assert data["released_amount"] == "0.11000000"
    assert await account_balance(runtime, alice.account_id) == (parse_amount("1"), 0)
    await drain(runtime)
    view = await _execution(http, alice, run_id)
    assert view["status"] == "cancelled"
    assert view["started_at"] is None
    assert not [log for log in view["logs"] if log["event_type"] == "executing"]

    again = await _cancel(http, alice, run_id)
    assert again["cancel_outcome"] == "already_cancelled"
    assert await account_balance(runtime, alice.account_id) == (parse_amount("1"), 0)


async def test_cancel_running_stops_at_a_node_boundary_and_charges_time_used(runtime, http):
    alice, run_id = await _submit_sleepy(runtime, http, seconds=LONG_NODE)
    worker = Worker(runtime, settings=runtime.settings.worker)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def in_node_2() -> dict[str, Any] | None:
            view = await _execution(http, alice, run_id)
            snapshot = view["progress_snapshot"]
            return view if snapshot and snapshot["node_id"] == "2" else None

        view = await until(in_node_2, what="node 2 to run")
        assert view["status"] == "running"
        first = await _cancel(http, alice, run_id)
        assert first["cancel_outcome"] == "cancel_requested"
        second = await _cancel(http, alice, run_id)
        assert second["cancel_outcome"] in ("already_requested", "already_cancelled")
        view = await api.wait_status(http, alice, run_id)
    finally:
        stop.set()
        await task
    assert view["status"] == "cancelled"
    executed = [log["node_id"] for log in view["logs"] if log["event_type"] == "executed"]
    assert "3" not in executed
    assert "4" not in executed
    info = (
        await http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers)
    ).json()["data"]
    # 0.01 CNY per second of the time the worker measured until node 2 stopped, no fixed fee
    used = execution_ms(view)
    assert 0 < used < 1000 * LONG_NODE  # node 2 stopped mid-sleep
    bill = cancelled_running(quote=cny("0.11"), price_per_second=cny("0.01"), execution_ms=used)
    assert bill.final > 0
    assert_bill(info, bill)
    assert info["error_code"] == "USER_CANCELLED"
    assert await account_balance(runtime, alice.account_id) == (cny("1") - bill.final, 0)
    after = await _cancel(http, alice, run_id)
    assert after["cancel_outcome"] == "already_cancelled"


async def test_cancel_after_success_is_a_no_op(runtime, http):
    alice, run_id = await _submit_sleepy(runtime, http, seconds=0)
    await drain(runtime)
    before = await account_balance(runtime, alice.account_id)
    data = await _cancel(http, alice, run_id)
    assert data["cancel_outcome"] == "already_finished"
    assert data["run_status"] == "succeeded"
    assert await account_balance(runtime, alice.account_id) == before


async def test_cancel_someone_elses_run_is_not_found(runtime, http):
    _, run_id = await _submit_sleepy(runtime, http, seconds=0)
    mallory = await customer(runtime, name="mallory")
    response = await http.post(
        "/workflow/run/cancel", json={"run_order_id": run_id}, headers=mallory.headers
    )
    assert response.status_code == 404
    assert response.json()["data"]["error"]["engine_code"] == "RUN_NOT_FOUND"
    await drain(runtime)
