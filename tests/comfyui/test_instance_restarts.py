"""Issue 11: restarts are weather, not failure; the time limit spans a run's whole life.

A ComfyUI instance that stops answering is marked unhealthy by the first failed dispatch or
connection; its runs wait for it (no attempt used, logged once) within their time limit, and
go on as soon as a probe finds it back. The stand-in stays down until the test restarts it
(``ComfyStandin.crash`` / ``start``): a restart of any length, without a sleep. Its clock is
stopped, so the engine time ComfyUI reports, and every bill, is exact.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from tests.support import api
from tests.support import money as m
from tests.support.factories import Customer, customer, operator, sleepy_package
from tests.support.jobs import due_at, retry_due_now, started_ago
from tests.support.money import cny
from tests.support.waiting import until
from wfrun.db.instances import LoadedInstance
from wfrun.db.runs import find_run
from wfrun.db.schema import jobs
from wfrun.domain.money import format_amount
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances
from wfrun.services.claims import engine_prompt_id
from wfrun.workers import health
from wfrun.workers.worker import Worker

FEE, PER_SECOND, ESTIMATED_S = cny("0.05"), cny("0.00314159"), 20
QUOTE = FEE + PER_SECOND * ESTIMATED_S


@pytest.fixture
async def comfy(runtime: Runtime, standin: ComfyStandin) -> ComfyStandin:
    """The stand-in registered as the only instance, clock stopped, engine on test timings."""
    await runtime.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    runtime.engines["comfyui"] = ComfyUIEngine("wfrun-restarts", settings=FAST)
    await instances.add_instance(runtime.db, url=standin.base_url, capacity=1, labels={})
    standin.clock.stop()
    return standin


def _worker(rt: Runtime, *, probe_interval: float = 3600.0, retry_delay: float = 0.05) -> Worker:
    """A worker that would burn its 3 attempts in a blink if it retried (0.05 s apart), and
    whose own probe by default only runs at its start: what marks an instance down is then a
    dispatch, and what finds it back is the test's probe."""
    settings = rt.settings.worker.model_copy(
        update={"retry_delay_seconds": retry_delay, "probe_interval": probe_interval}
    )
    return Worker(rt, settings=settings)


async def _workflow(rt: Runtime, *, timeout_seconds: int = 60) -> str:
    package = sleepy_package(seconds=0)
    package.update(engine="comfyui", slug="restarts", timeout_seconds=timeout_seconds)
    package["pricing"] = {
        "fixed_fee": format_amount(FEE),
        "price_per_second": format_amount(PER_SECOND),
        "estimated_seconds": ESTIMATED_S,
    }
    result = await catalog.import_package(
        rt.db, owner_id=await operator(rt), document=package, publish=True
    )
    return result.workflow_id


async def _instance(rt: Runtime) -> LoadedInstance:
    (only,) = await instances.list_instances(rt.db)
    return only


async def _attempts(rt: Runtime, run_id: str) -> int:
    """Attempts the run's job has used up: claims, less the waits that gave one back (a wait
    keeps the claim's number, the fencing token, and grants one more instead)."""
    async with rt.db.transaction() as conn:
        query = select(jobs.c.attempts, jobs.c.max_attempts).where(jobs.c.run_id == run_id)
        attempts, granted = (await conn.execute(query)).one()
    return int(attempts - (granted - rt.settings.worker.max_attempts))


def _events(view: dict[str, Any], kind: str) -> list[str]:
    return [e["message"] for e in view["logs"] if e["event_type"] == kind]


async def _comes_back(rt: Runtime, comfy: ComfyStandin) -> None:
    """The restart ends: the stand-in listens again and a health probe finds it."""
    await comfy.start()
    async with httpx.AsyncClient(trust_env=False) as client:
        assert await health.probe_all(rt.db, client) == 1  # it came back
    assert (await _instance(rt)).healthy is True


async def _finish_held(comfy: ComfyStandin, run_id: str, engine_ms: int) -> None:
    await comfy.wait_held(engine_prompt_id(run_id))
    comfy.clock.advance(engine_ms)
    await comfy.release()


async def _assert_charged_once(
    http: httpx.AsyncClient, who: Customer, run_id: str, bill: m.Bill
) -> None:
    m.assert_bill(await api.info(http, who, run_id), bill)
    shown = await api.balance(http, who)
    assert (shown["available_amount"], shown["frozen_amount"]) == (
        format_amount(cny("10") - bill.final),
        format_amount(0),
    )
    charged = [b["amount_exact"] for b in await api.bills(http, who) if b["run_order_id"] == run_id]
    assert charged == ([format_amount(bill.final)] if bill.final else [])


async def test_a_restart_during_submit_waits_for_the_instance_and_succeeds(runtime, http, comfy):
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, balance="10")
    await comfy.hold(running=True)
    async with api.running_worker(runtime, _worker(runtime)):
        await until(
            lambda: _checked(runtime), what="the worker's first probe"
        )  # before the crash: the probe must not be what notices it
        await comfy.crash()  # ComfyUI restarting: nothing listens
        run_id = (await api.submit(http, alice, workflow_id, "submit"))["run_order_id"]

        async def waiting() -> bool:
            return bool(_events(await api.execution(http, alice, run_id), "waiting"))

        await until(waiting, what="the run to wait for its instance")
        down = await _instance(runtime)
        assert down.healthy is False  # after one failed dispatch, not three failed probes
        assert f"ComfyUI at {comfy.base_url}" in (down.last_error or "")  # names what failed
        assert await _attempts(runtime, run_id) == 0  # the wait used no attempt
        await _comes_back(runtime, comfy)
        await _finish_held(comfy, run_id, engine_ms=7_654)
        view = await api.wait_status(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]
    assert len(_events(view, "waiting")) == 1  # logged once
    assert _events(view, "retry") == []
    assert await _attempts(runtime, run_id) == 1
    assert len(comfy.calls("POST", "/prompt")) == 1  # submitted once, after the restart
    bill = m.success(quote=QUOTE, fixed_fee=FEE, price_per_second=PER_SECOND, execution_ms=7_654)
    await _assert_charged_once(http, alice, run_id, bill)


async def _checked(rt: Runtime) -> bool:
    return (await _instance(rt)).last_check_at is not None


async def test_a_restart_during_a_run_waits_then_runs_it_again_charged_once(runtime, http, comfy):
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, balance="10")
    await comfy.hold(running=True)
    async with api.running_worker(runtime, _worker(runtime, probe_interval=0.1)):
        run_id = (await api.submit(http, alice, workflow_id, "mid-run"))["run_order_id"]
        await comfy.wait_held(engine_prompt_id(run_id))  # accepted and executing
        comfy.clock.advance(1_000)  # lost with the process: never charged
        await comfy.crash()

        async def waiting() -> bool:
            return bool(_events(await api.execution(http, alice, run_id), "waiting"))

        await until(waiting, what="the run to wait for its instance")
        assert (await _instance(runtime)).healthy is False
        assert (await api.execution(http, alice, run_id))["status"] == "running"
        await comfy.start()  # the worker's own probe finds it back and wakes the run
        await _finish_held(comfy, run_id, engine_ms=4_321)  # queued again, held again
        view = await api.wait_status(http, alice, run_id)
    assert view["status"] == "succeeded", view["error"]
    assert len(_events(view, "waiting")) == 1
    assert await _attempts(runtime, run_id) == 1  # the wait used no attempt
    prompts = [r.json()["prompt_id"] for r in comfy.calls("POST", "/prompt")]
    assert prompts == [engine_prompt_id(run_id)] * 2  # the same engine prompt id, re-queued
    bill = m.success(quote=QUOTE, fixed_fee=FEE, price_per_second=PER_SECOND, execution_ms=4_321)
    await _assert_charged_once(http, alice, run_id, bill)


async def test_a_cancel_while_the_run_waits_for_its_instance_ends_it_now(runtime, http, comfy):
    """The instance that accepted the prompt is down and the run waits for it (its job due only
    at the time limit, 600 s away): a cancel ends it at once, released in full, instead of
    leaving its money frozen until the instance answers or the limit passes."""
    workflow_id = await _workflow(runtime, timeout_seconds=600)
    alice = await customer(runtime, balance="10")
    await comfy.hold(running=True)
    async with api.running_worker(runtime, _worker(runtime)):
        run_id = (await api.submit(http, alice, workflow_id, "cancel-waiting"))["run_order_id"]
        await comfy.wait_held(engine_prompt_id(run_id))
        await comfy.crash()

        async def waiting() -> bool:
            return bool(_events(await api.execution(http, alice, run_id), "waiting"))

        await until(waiting, what="the run to wait for its instance")
        assert (await api.cancel(http, alice, run_id))["cancel_outcome"] == "cancel_requested"
        view = await api.wait_status(http, alice, run_id, "cancelled")
    assert view["status"] == "cancelled"
    await _assert_charged_once(http, alice, run_id, m.released(QUOTE))


async def test_a_long_outage_ends_the_run_at_its_time_limit_released_once(runtime, http, comfy):
    workflow_id = await _workflow(runtime, timeout_seconds=60)
    alice = await customer(runtime, balance="10")
    await comfy.hold(running=True)
    async with api.running_worker(runtime, _worker(runtime)):
        run_id = (await api.submit(http, alice, workflow_id, "outage"))["run_order_id"]
        await comfy.wait_held(engine_prompt_id(run_id))
        await comfy.crash()  # and it never comes back

        async def waiting() -> bool:
            return bool(_events(await api.execution(http, alice, run_id), "waiting"))

        await until(waiting, what="the run to wait for its instance")
        async with runtime.db.transaction() as conn:
            run = await find_run(conn, run_id)
        assert run is not None
        assert run.started_at is not None
        assert await due_at(runtime, run_id) <= run.started_at + timedelta(seconds=60)
        await started_ago(runtime, run_id, 61)  # the limit passes (no sleep racing a busy
        await retry_due_now(runtime, run_id)  # machine), and the wait comes due with it
        view = await api.wait_status(http, alice, run_id)
    assert view["status"] == "failed"
    assert view["error"]["engine_code"] == "ENGINE_TIMEOUT"
    assert "time limit of 60 s" in view["error"]["detail"]
    assert len(_events(view, "waiting")) == 1  # it waited for the instance, then timed out
    assert await _attempts(runtime, run_id) <= 1
    await _assert_charged_once(http, alice, run_id, m.released(QUOTE))
    await comfy.start()  # for the fixture's shutdown


async def test_a_retry_that_could_only_start_after_the_time_limit_ends_the_run(
    runtime, http, comfy
):
    workflow_id = await _workflow(runtime, timeout_seconds=30)
    alice = await customer(runtime, balance="10")
    await comfy.hold(running=True)
    async with api.running_worker(runtime, _worker(runtime, retry_delay=60.0)):
        run_id = (await api.submit(http, alice, workflow_id, "late"))["run_order_id"]
        await comfy.wait_held(engine_prompt_id(run_id))
        await comfy.crash_restart()  # back at once, the prompt forgotten: a transient failure
        view = await api.wait_status(http, alice, run_id)
    assert view["status"] == "failed"
    assert view["error"]["engine_code"] == "ENGINE_TIMEOUT"
    assert "no time left to retry" in view["error"]["detail"]
    assert _events(view, "retry") == []
    assert len(comfy.calls("POST", "/prompt")) == 1  # never dispatched again
    await _assert_charged_once(http, alice, run_id, m.released(QUOTE))


async def test_a_refused_probe_marks_the_instance_down_at_once(runtime, comfy):
    async with httpx.AsyncClient(trust_env=False) as client:
        await comfy.crash()
        assert await health.probe_all(runtime.db, client) == 0
        down = await _instance(runtime)
        assert down.healthy is False  # one refused probe, not three failed ones
        assert "ConnectError" in (down.last_error or "")
        assert await health.probe_all(runtime.db, client) == 0  # still down, not "back"
        await comfy.start()
        assert await health.probe_all(runtime.db, client) == 1
        assert await health.probe_all(runtime.db, client) == 0  # back once
    assert (await _instance(runtime)).healthy is True
