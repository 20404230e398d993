"""comfyui workflows end to end through the HTTP API, on ComfyUI stand-ins on loopback.

The engine is the production ComfyUIEngine (HTTP + WebSocket); only its timings are shortened.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from tests.support import api, money
from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    data_uri,
    drain,
    operator,
    png_bytes,
    sleepy_package,
)
from tests.support.jobs import retry_due_now
from tests.support.money import assert_bill, cny, execution_ms
from tests.support.waiting import until
from wfrun.domain.money import parse_amount
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.engines.local.engine import LocalEngine
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances
from wfrun.services.claims import engine_prompt_id
from wfrun.services.instance_check import CheckOptions
from wfrun.workers import health
from wfrun.workers.worker import Worker


def invert_package() -> dict[str, Any]:
    text = resources.files("wfrun").joinpath("demo/comfyui_invert.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def sleepy_comfy(seconds: float) -> dict[str, Any]:
    package = sleepy_package(seconds=seconds)
    package.update(engine="comfyui", slug="sleepy-comfy")
    return package


@pytest.fixture
def comfy(standin: ComfyStandin) -> ComfyStandin:
    return standin


@pytest.fixture
async def fast_engine(runtime: Runtime) -> Runtime:
    """The runtime, its comfyui engine given test timings (same code, shorter waits)."""
    await runtime.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    runtime.engines["comfyui"] = ComfyUIEngine("wfrun-e2e", settings=FAST)
    return runtime


async def _setup(
    rt: Runtime, comfy: ComfyStandin, document: dict[str, Any], capacity: int = 1
) -> tuple[str, Customer]:
    await instances.add_instance(rt.db, url=comfy.base_url, capacity=capacity, labels={})
    owner = await operator(rt)
    result = await catalog.import_package(rt.db, owner_id=owner, document=document, publish=True)
    assert result.node_check.checked_against == (comfy.base_url,)
    return result.workflow_id, await customer(rt, balance="10")


async def _submit(
    http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str, inputs: dict[str, Any]
) -> str:
    response = await http.post(
        "/workflow/run/submit",
        headers=who.headers,
        json={"workflow_id": workflow_id, "idempotency_key": key, "inputs": inputs},
    )
    assert response.status_code == 200, response.text
    run_id: str = response.json()["data"]["run_order_id"]
    return run_id


async def _view(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, Any]:
    response = await http.get(
        "/workflow/run/execution", params={"run_order_id": run_id}, headers=who.headers
    )
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_success_with_progress_and_outputs_identical_to_the_local_engine(
    fast_engine, http, comfy
):
    rt = fast_engine
    workflow_id, alice = await _setup(rt, comfy, invert_package())
    image = png_bytes(24, 16, (10, 200, 30))
    run_id = await _submit(http, alice, workflow_id, "ok", {"n1_image": data_uri(image)})
    queued = await _view(http, alice, run_id)
    assert queued["queue_info"]["position"] == 1
    await drain(rt)
    view = await _view(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]
    executed = [e["node_id"] for e in view["logs"] if e["event_type"] == "executed"]
    assert executed == ["1", "2", "3"]
    async with httpx.AsyncClient() as plain:
        output = (await plain.get(view["outputs"]["n3_images"][0])).content
    local = await _run_locally(invert_package()["graph"], image)
    assert _pixels(output) == _pixels(local)  # PNG text chunks differ: they embed the graph
    assert _pixels(output)[1][:3] == bytes([245, 54, 225])  # ComfyUI float32 rounding
    assert len(comfy.calls("POST", "/prompt")) == 1
    prompt_id = comfy.calls("POST", "/prompt")[0].json()["prompt_id"]
    async with httpx.AsyncClient() as plain:
        entry = (await plain.get(f"{comfy.base_url}/history/{prompt_id}")).json()[prompt_id]
    stamps = {name: data["timestamp"] for name, data in entry["status"]["messages"]}
    billed_ms = stamps["execution_success"] - stamps["execution_start"]
    assert view["actual_execution_duration_sec"] == billed_ms / 1000  # the instance's clock
    info = (
        await http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers)
    ).json()["data"]
    assert parse_amount(info["final_amount"]) + parse_amount(info["released_amount"]) == (
        parse_amount(info["quote_amount"])
    )


def _pixels(png: bytes) -> tuple[tuple[int, int], bytes]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size, image.convert("RGB").tobytes()


class _Sink:
    async def node_started(self, *_: Any) -> None: ...
    async def node_finished(self, *_: Any) -> None: ...


async def _run_locally(graph: dict[str, Any], image: bytes) -> bytes:
    import threading

    from wfrun.engines.base import RunSpec

    graph = json.loads(json.dumps(graph))
    graph["1"]["inputs"]["image"] = "in.png"
    results = await LocalEngine().execute(
        RunSpec("r", 1, graph, {"in.png": image}), _Sink(), threading.Event()
    )
    return results["3"].files[0].data


async def test_validation_failure_on_the_instance_releases_everything(fast_engine, http, comfy):
    rt = fast_engine
    package = sleepy_comfy(0)
    package["inputs"][0]["max"] = 100_000  # wfrun allows it; ComfyUI's TestSleep max is 9999
    workflow_id, alice = await _setup(rt, comfy, package)
    run_id = await _submit(http, alice, workflow_id, "bad", {"n2_seconds": 50_000})
    await drain(rt)
    view = await _view(http, alice, run_id)
    assert view["status"] == "failed"
    assert view["error"]["engine_code"] == "ENGINE_VALIDATION_FAILED"
    assert "node 2" in view["error"]["detail"]
    assert "seconds" in view["error"]["detail"]
    assert await account_balance(rt, alice.account_id) == (parse_amount("10"), 0)


async def test_execution_failure_names_the_node(fast_engine, http, comfy):
    rt = fast_engine
    workflow_id, alice = await _setup(rt, comfy, invert_package())
    corrupt = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4
    run_id = await _submit(http, alice, workflow_id, "x", {"n1_image": data_uri(corrupt)})
    await drain(rt)
    view = await _view(http, alice, run_id)
    assert view["status"] == "failed"
    assert view["error"]["engine_code"] == "ENGINE_EXECUTION_FAILED"
    assert "LoadImage" in view["error"]["detail"]
    assert await account_balance(rt, alice.account_id) == (parse_amount("10"), 0)


async def test_cancel_while_pending_on_the_instance_and_while_running(fast_engine, http, comfy):
    rt = fast_engine
    workflow_id, alice = await _setup(rt, comfy, sleepy_comfy(0), capacity=2)
    await comfy.hold(running=True)  # the first prompt to start stops at its first node
    async with api.running_worker(rt):
        first = await _submit(http, alice, workflow_id, "a", {})
        await comfy.wait_held(engine_prompt_id(first))  # running on the instance
        second = await _submit(http, alice, workflow_id, "b", {})
        await comfy.wait_pending(engine_prompt_id(second))  # queued behind it
        await _cancel_and_wait(http, alice, second)
        await _cancel_and_wait(http, alice, first)
    deletes = [r.json() for r in comfy.calls("POST", "/queue")]
    interrupts = [r.json() for r in comfy.calls("POST", "/interrupt")]
    assert deletes == [{"delete": [engine_prompt_id(second)]}]
    assert interrupts  # confirmed by execution_interrupted; re-sent only if that is slow
    assert all(i == {"prompt_id": engine_prompt_id(first)} for i in interrupts)
    # each is charged the time ComfyUI executed it, never the fixed fee; the second never
    # executed (removed while pending): nothing (issue 11, tests/api/test_cancel_billing.py)
    assert execution_ms(await _view(http, alice, second)) == 0
    charged = 0
    for run_id in (first, second):
        used = money.cancelled_running(
            quote=cny("0.11"),
            price_per_second=cny("0.01"),
            execution_ms=execution_ms(await _view(http, alice, run_id)),
        )
        assert_bill(await api.info(http, alice, run_id), used)
        charged += used.final
    assert await account_balance(rt, alice.account_id) == (cny("10") - charged, 0)


async def _cancel_and_wait(http: httpx.AsyncClient, who: Customer, run_id: str) -> None:
    """Cancels a running run through the API and waits until it is cancelled."""
    assert (await api.cancel(http, who, run_id))["cancel_outcome"] == "cancel_requested"
    await api.wait_status(http, who, run_id, "cancelled")


async def test_instance_down_before_dispatch_then_back(fast_engine, http, comfy):
    rt = fast_engine
    workflow_id, alice = await _setup(rt, comfy, invert_package())
    await comfy.stop()
    run_id = await _submit(http, alice, workflow_id, "down", {"n1_image": data_uri(png_bytes())})
    worker = _retrying_worker(rt, WAITS)
    await worker.run_until_idle()
    view = await _view(http, alice, run_id)
    assert view["status"] == "running"
    assert any(e["event_type"] == "waiting" for e in view["logs"])  # for the instance: issue 11
    assert not any(e["event_type"] == "retry" for e in view["logs"])
    assert [i.healthy for i in await instances.list_instances(rt.db)] == [False]
    await comfy.start()
    async with httpx.AsyncClient(trust_env=False) as client:
        await health.probe_all(rt.db, client)  # a burst worker runs no probe of its own
    await _drain_until_ended(worker, http, alice, run_id)
    assert (await _view(http, alice, run_id))["status"] == "succeeded"


WAITS = timedelta(hours=1)
"""A retry delay no drain outlasts: the job waits until the test makes it due."""


def _retrying_worker(rt: Runtime, delay: timedelta = timedelta(seconds=0.1)) -> Worker:
    """A worker whose runs wait ``delay`` for a transient retry (0.1 s by default)."""
    worker = Worker(rt)
    worker.deps = replace(worker.deps, retry_delay=delay)
    return worker


async def _drain_until_ended(
    worker: Worker, http: httpx.AsyncClient, who: Customer, run_id: str
) -> None:
    """Drains the queue again (jobs wait for their retry or deferral) until the run ended."""

    async def ended() -> bool:
        await worker.run_until_idle()
        return (await _view(http, who, run_id))["status"] in ("succeeded", "failed", "cancelled")

    await until(ended, what=f"run {run_id} to end")


async def test_instance_restart_mid_run_is_redispatched_and_settled_once(fast_engine, http, comfy):
    rt = fast_engine
    workflow_id, alice = await _setup(rt, comfy, sleepy_comfy(0))
    await comfy.hold(running=True)
    run_id = await _submit(http, alice, workflow_id, "r", {})
    async with api.running_worker(rt, _retrying_worker(rt)):
        await comfy.wait_held(engine_prompt_id(run_id))  # mid-run on the instance
        await comfy.crash_restart()  # the prompt dies with the process; its queue is forgotten
        await comfy.release()
        await api.wait_status(http, alice, run_id)  # re-dispatched, then ended
    view = await _view(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]
    assert len(comfy.calls("POST", "/prompt")) >= 2  # queued again on the restarted instance
    info = (
        await http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers)
    ).json()["data"]
    assert info["settlement_status"] == "settled"


@pytest.mark.slow
async def test_two_workers_three_instances_thirty_runs(fast_engine, http, tmp_path):
    rt = fast_engine
    pool = [ComfyStandin(tmp_path / f"comfy{i}") for i in range(3)]
    for server in pool:
        server.launch()
    try:
        workflow_id, alice = await _setup(rt, pool[0], invert_package(), capacity=2)
        for server in pool[1:]:
            await instances.add_instance(rt.db, url=server.base_url, capacity=2, labels={})
        run_ids = [
            await _submit(
                http,
                alice,
                workflow_id,
                f"k{i}",
                {"n1_image": data_uri(png_bytes(8, 8, (i, 0, 0)))},
            )
            for i in range(30)
        ]

        async def all_succeeded() -> bool:
            views = [await _view(http, alice, r) for r in run_ids]
            assert not [v["error"] for v in views if v["status"] == "failed"]
            return all(v["status"] == "succeeded" for v in views)

        async with api.running_worker(rt), api.running_worker(rt):
            await until(all_succeeded, what="30 runs to succeed", timeout=120, interval=0.2)
        posted = [r.json()["prompt_id"] for s in pool for r in s.calls("POST", "/prompt")]
        assert len(posted) == len(set(posted)) == 30  # each run dispatched exactly once
        assert all(s.calls("POST", "/prompt") for s in pool)  # the pool shared the work
        charged = 0  # each run: 0.02 + 0.01/s of the time its instance reported, exactly
        for run_id in run_ids:
            bill = money.success(
                quote=cny("0.07"),
                fixed_fee=cny("0.02"),
                price_per_second=cny("0.01"),
                execution_ms=execution_ms(await _view(http, alice, run_id)),
            )
            assert_bill(await api.info(http, alice, run_id), bill)
            charged += bill.final
        assert await account_balance(rt, alice.account_id) == (cny("10") - charged, 0)
    finally:
        for server in pool:
            server.shutdown()


async def test_required_labels_and_draining_steer_scheduling(fast_engine, http, tmp_path):
    rt = fast_engine
    t4, a100 = ComfyStandin(tmp_path / "t4"), ComfyStandin(tmp_path / "a100")
    t4.launch()
    a100.launch()
    try:
        package = invert_package()
        package["required_labels"] = {"gpu": "a100"}
        await instances.add_instance(rt.db, url=t4.base_url, capacity=4, labels={"gpu": "t4"})
        owner = await operator(rt)
        allowed = CheckOptions(allow_no_instance=True)  # no a100 yet: runs wait for one
        workflow_id = (
            await catalog.import_package(
                rt.db, owner_id=owner, document=package, publish=True, options=allowed
            )
        ).workflow_id
        alice = await customer(rt, balance="10")
        run_id = await _submit(http, alice, workflow_id, "l", {"n1_image": data_uri(png_bytes())})
        await drain(rt)
        view = await _view(http, alice, run_id)
        assert view["status"] == "queued"  # no instance carries gpu=a100
        assert view["queue_info"]["position"] == 1
        added = await instances.add_instance(
            rt.db, url=a100.base_url, capacity=1, labels={"gpu": "a100"}
        )
        await instances.drain_instance(rt.db, added.id)
        await drain(rt)
        assert (await _view(http, alice, run_id))["status"] == "queued"  # draining: no new work
        await instances.drain_instance(rt.db, added.id, resume=True)
        await _drain_until_ended(Worker(rt), http, alice, run_id)  # deferred for a second
        assert (await _view(http, alice, run_id))["status"] == "succeeded"
        assert t4.calls("POST", "/prompt") == []
        assert len(a100.calls("POST", "/prompt")) == 1
    finally:
        t4.shutdown()
        a100.shutdown()


async def test_cancel_while_waiting_for_a_retry_releases_everything(fast_engine, http, comfy):
    rt = fast_engine
    workflow_id, alice = await _setup(rt, comfy, invert_package())
    await comfy.stop()
    run_id = await _submit(http, alice, workflow_id, "w", {"n1_image": data_uri(png_bytes())})
    worker = _retrying_worker(rt, WAITS)
    await worker.run_until_idle()  # the instance is down: the job waits for a retry
    cancel = await http.post(
        "/workflow/run/cancel", json={"run_order_id": run_id}, headers=alice.headers
    )
    assert cancel.json()["data"]["cancel_outcome"] == "cancel_requested"
    await retry_due_now(rt, run_id)
    await _drain_until_ended(worker, http, alice, run_id)
    view = await _view(http, alice, run_id)
    assert view["status"] == "cancelled"
    assert await account_balance(rt, alice.account_id) == (parse_amount("10"), 0)


async def test_an_instance_that_stays_down_fails_the_run_at_its_time_limit(
    fast_engine, http, comfy
):
    """Waiting for a down instance uses no attempt (issue 11), so it is the time limit that
    ends the run, its freeze released, not ``max_attempts`` burnt in a few seconds."""
    rt = fast_engine
    package = invert_package() | {"timeout_seconds": 2}
    workflow_id, alice = await _setup(rt, comfy, package)
    await comfy.stop()
    run_id = await _submit(http, alice, workflow_id, "gone", {"n1_image": data_uri(png_bytes())})
    await _drain_until_ended(_retrying_worker(rt), http, alice, run_id)
    view = await _view(http, alice, run_id)
    assert view["status"] == "failed"
    assert view["error"]["engine_code"] == "ENGINE_TIMEOUT"
    assert "time limit of 2 s" in view["error"]["detail"]
    assert [e["event_type"] for e in view["logs"]].count("waiting") == 1
    assert await account_balance(rt, alice.account_id) == (parse_amount("10"), 0)
