"""The queue through the HTTP API: one fair order per lane for claims, ``queue_position`` and
the ETA; a run waits in place for capacity and starts as soon as a slot frees; a run nothing
can start fails ``QUEUE_TIMEOUT`` at its deadline with its freeze released, and says why it
waits meanwhile.

Runs go to a ComfyUI stand-in of capacity 1 that holds each prompt until the test lets it go
(``hold``): the test, not a clock, decides when a slot frees.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from tests.comfyui.standin_state import StandinState
from tests.support import api
from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    drain,
    operator,
    sleepy_package,
)
from tests.support.money import assert_bill, cny, execution_ms, released, success
from tests.support.waiting import until
from wfrun.clock import utcnow
from wfrun.config import WorkerSettings
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances, queue_deadlines
from wfrun.services.claims import engine_prompt_id
from wfrun.services.instance_check import STRICT, CheckOptions
from wfrun.workers import health
from wfrun.workers.worker import Worker

SLEEP = "2"  # the sleepy graph's TestSleep node: where the stand-in holds a prompt
_DISTINCT = itertools.count(1)
QUOTE = cny("0.11")  # the sleepy package: 0.01 fee + 10 estimated seconds at 0.01/s
DOWN = ("http://127.0.0.1:9", "http://127.0.0.1:7")  # loopback ports nothing listens on


@pytest.fixture
async def rt(runtime: Runtime) -> Runtime:
    """The runtime, its comfyui engine given test timings (same code, shorter waits)."""
    await runtime.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    runtime.engines["comfyui"] = ComfyUIEngine("wfrun-queue", settings=FAST)
    return runtime


def sleepy_comfy(**changes: Any) -> dict[str, Any]:
    package = sleepy_package(seconds=0)
    package.update(engine="comfyui", slug="sleepy-comfy", **changes)
    return package


async def publish(rt: Runtime, package: dict[str, Any], options: CheckOptions = STRICT) -> str:
    owner = await operator(rt)
    imported = await catalog.import_package(
        rt.db, owner_id=owner, document=package, publish=True, options=options
    )
    return imported.workflow_id


DOWN_NOW = CheckOptions(skip_node_check=True)
"""The operator publishes while the able instances are down (``--skip-node-check``)."""


async def submit(http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str) -> str:
    """A run whose sleep node differs from every other's (ComfyUI would serve an identical
    prompt from its cache without executing a node the test could hold)."""
    inputs = {"n2_seconds": next(_DISTINCT) / 1000}
    run_id: str = (await api.submit(http, who, workflow_id, key, inputs))["run_order_id"]
    return run_id


async def positions(http: httpx.AsyncClient, who: Customer, run_ids: list[str]) -> list[int]:
    views = [await api.execution(http, who, r) for r in run_ids]
    assert all(v["status"] == "queued" for v in views), [v["status"] for v in views]
    return [v["queue_info"]["position"] for v in views]


def _set(pending: bool, running: bool) -> Callable[[StandinState], None]:
    def apply(state: StandinState) -> None:
        state.holds.hold(pending=pending, running=running, node=SLEEP)
        state.holds.wake()
        state.wake()

    return apply


async def start_next_held(comfy: ComfyStandin, run_id: str) -> None:
    """Lets the pending prompt start and stops it before its sleep node."""
    await comfy.call(_set(pending=False, running=True))
    await comfy.wait_held(engine_prompt_id(run_id))


async def finish_keeping_next_pending(comfy: ComfyStandin) -> None:
    """Lets the held prompt finish; the next one to arrive stays pending."""
    await comfy.call(_set(pending=True, running=False))


def posted(comfy: ComfyStandin) -> list[str]:
    return [r.json()["prompt_id"] for r in comfy.calls("POST", "/prompt")]


async def settle_all(http: httpx.AsyncClient, who: Customer, run_ids: list[str]) -> int:
    """Each run's bill, exactly; their total."""
    total = 0
    for run_id in run_ids:
        view = await api.wait_status(http, who, run_id)
        assert view["status"] == "succeeded", view["error"]
        bill = success(
            quote=QUOTE,
            fixed_fee=cny("0.01"),
            price_per_second=cny("0.01"),
            execution_ms=execution_ms(view),
        )
        assert_bill(await api.info(http, who, run_id), bill)
        total += bill.final
    return total


async def test_five_runs_on_capacity_one_start_in_order_and_count_down(rt, http, standin):
    await instances.add_instance(rt.db, url=standin.base_url, capacity=1, labels={})
    workflow_id = await publish(rt, sleepy_comfy())
    alice = await customer(rt)
    await standin.hold(running=True, node=SLEEP)
    async with api.running_worker(rt):
        runs = [await submit(http, alice, workflow_id, f"k{i}") for i in range(5)]
        for k, run_id in enumerate(runs):
            if k:
                await standin.wait_pending(engine_prompt_id(run_id))
                await start_next_held(standin, run_id)
            else:  # the first goes straight to the instance
                await standin.wait_held(engine_prompt_id(run_id))
            assert (await api.execution(http, alice, run_id))["status"] == "running"
            waiting = runs[k + 1 :]
            assert await positions(http, alice, waiting) == list(range(1, len(waiting) + 1))
            etas = [(await api.execution(http, alice, r))["queue_info"] for r in waiting]
            assert [e["estimated_wait_sec"] for e in etas] == sorted(
                e["estimated_wait_sec"] for e in etas
            )
            assert [e["reason"] for e in etas] == [_reason(p) for p in range(1, len(etas) + 1)]
            await finish_keeping_next_pending(standin)
        charged = await settle_all(http, alice, runs)
    assert posted(standin) == [engine_prompt_id(r) for r in runs]  # submission order
    assert await account_balance(rt, alice.account_id) == (cny("10") - charged, 0)


def _reason(place: int) -> str:
    if place == 1:
        return "next in lane comfyui; all 1 instance slots are busy"
    return f"{place - 1} run{'s' if place > 2 else ''} ahead in lane comfyui"


async def test_a_burst_does_not_delay_another_accounts_single_run(rt, http, standin):
    await instances.add_instance(rt.db, url=standin.base_url, capacity=1, labels={})
    workflow_id = await publish(rt, sleepy_comfy())
    alice, bob = await customer(rt, name="alice"), await customer(rt, name="bob")
    await standin.hold(running=True, node=SLEEP)
    async with api.running_worker(rt):
        burst = [await submit(http, alice, workflow_id, f"a{i}") for i in range(20)]
        await standin.wait_held(engine_prompt_id(burst[0]))
        single = await submit(http, bob, workflow_id, "b")
        # Bob's run joins the round in service: next, ahead of the other 19 of Alice's.
        assert await positions(http, bob, [single]) == [1]
        assert await positions(http, alice, burst[1:3]) == [2, 3]
        await finish_keeping_next_pending(standin)
        await standin.wait_pending(engine_prompt_id(single))
        await standin.release()
        charged_alice = await settle_all(http, alice, burst)
        charged_bob = await settle_all(http, bob, [single])
    order = posted(standin)
    assert order[:3] == [engine_prompt_id(r) for r in (burst[0], single, burst[1])]
    assert order == [engine_prompt_id(r) for r in (burst[0], single, *burst[1:])]
    assert await account_balance(rt, alice.account_id) == (cny("10") - charged_alice, 0)
    assert await account_balance(rt, bob.account_id) == (cny("10") - charged_bob, 0)


async def test_a_freed_slot_starts_the_next_run_at_once_not_at_a_poll(rt, http, standin):
    await instances.add_instance(rt.db, url=standin.base_url, capacity=1, labels={})
    workflow_id = await publish(rt, sleepy_comfy())
    alice = await customer(rt)
    await standin.hold(running=True, node=SLEEP)
    # The worker looks at the queue only when woken (a submit, a run of its own ending) or
    # after a minute: the wait below (30 s at most) passes only if the end of the first run
    # starts the second at once.
    sleepy = Worker(
        rt, settings=WorkerSettings(poll_interval=60, lease_seconds=5), wakeup=rt.wakeup
    )
    async with api.running_worker(rt, sleepy):
        first = await submit(http, alice, workflow_id, "first")
        await standin.wait_held(engine_prompt_id(first))
        second = await submit(http, alice, workflow_id, "second")
        assert await positions(http, alice, [second]) == [1]
        await finish_keeping_next_pending(standin)
        await standin.wait_pending(engine_prompt_id(second))
        await standin.release()
        charged = await settle_all(http, alice, [first, second])
    assert await account_balance(rt, alice.account_id) == (cny("10") - charged, 0)


async def test_a_run_waiting_for_capacity_keeps_its_place(rt, http, standin):
    """While the lane is full, claims pass it by: nothing claims, defers or moves the waiting
    run, however often workers look; it stays first and starts first."""
    await instances.add_instance(rt.db, url=standin.base_url, capacity=1, labels={})
    workflow_id = await publish(rt, sleepy_comfy())
    alice = await customer(rt)
    await standin.hold(running=True, node=SLEEP)
    async with api.running_worker(rt):
        first = await submit(http, alice, workflow_id, "first")
        await standin.wait_held(engine_prompt_id(first))
        second = await submit(http, alice, workflow_id, "second")
        for _ in range(5):  # workers looking again find nothing they could start
            await drain(rt)
        job = await _job(rt, second)
        # no attempt used and not pushed back: a claim racing a full lane on PostgreSQL may
        # hand it back, due at once, its place (round, enqueue time) unchanged
        assert job.attempts == 0
        assert job.scheduled_at <= utcnow()
        third = await submit(http, alice, workflow_id, "third")
        assert await positions(http, alice, [second, third]) == [1, 2]
        second_view = await api.execution(http, alice, second)
        assert [e for e in second_view["logs"] if e["event_type"] != "queued"] == []
        await standin.release()
        charged = await settle_all(http, alice, [first, second, third])
    assert posted(standin) == [engine_prompt_id(r) for r in (first, second, third)]
    assert await account_balance(rt, alice.account_id) == (cny("10") - charged, 0)


async def _unhealthy_a100_pair(rt: Runtime) -> None:
    """Two gpu=a100 instances that stop answering: three failed probes mark each unhealthy."""
    for url in DOWN:
        await instances.add_instance(rt.db, url=url, capacity=1, labels={"gpu": "a100"})
    async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
        for _ in range(instances.UNHEALTHY_AFTER):
            await health.probe_all(rt.db, client)


NO_A100 = "no healthy comfyui instance with labels gpu=a100: 0 of 2 healthy and active"


async def test_a_run_no_instance_can_take_says_why_once(rt, http):
    await _unhealthy_a100_pair(rt)
    workflow_id = await publish(rt, sleepy_comfy(required_labels={"gpu": "a100"}), DOWN_NOW)
    alice = await customer(rt)
    run_id = await submit(http, alice, workflow_id, "stranded")
    view = await api.execution(http, alice, run_id)
    assert view["queue_info"] == {
        "position": 1,
        "estimated_wait_sec": view["queue_info"]["estimated_wait_sec"],
        "reason": NO_A100,
    }
    assert await queue_deadlines.explain_waits(rt.db, utcnow()) == 1
    assert await queue_deadlines.explain_waits(rt.db, utcnow()) == 0  # said once
    logs = (await api.execution(http, alice, run_id))["logs"]
    assert [(e["event_type"], e["message"]) for e in logs if e["event_type"] == "waiting"] == [
        ("waiting", f"waiting: {NO_A100}")
    ]
    await drain(rt)  # no claim takes it: it stays queued, first in its lane
    assert (await api.execution(http, alice, run_id))["queue_info"]["position"] == 1
    assert (await api.cancel(http, alice, run_id))["cancel_outcome"] == "cancelled"


async def test_a_run_no_instance_can_take_fails_queue_timeout_fully_released(rt, http):
    await _unhealthy_a100_pair(rt)
    package = sleepy_comfy(required_labels={"gpu": "a100"}, max_queue_seconds=1)
    workflow_id = await publish(rt, package, DOWN_NOW)
    alice = await customer(rt)
    async with api.running_worker(rt):  # its queue sweep ends the run at its deadline
        run_id = await submit(http, alice, workflow_id, "stranded")
        view = await api.wait_status(http, alice, run_id)
    assert view["status"] == "failed"
    assert view["error"]["engine_code"] == "QUEUE_TIMEOUT"
    assert view["error"]["status_code"] == 503
    assert view["error"]["detail"] == (
        f"not started within its queue deadline of 1 s ({NO_A100}); the whole freeze was released"
    )
    assert_bill(await api.info(http, alice, run_id), released(QUOTE))
    assert await account_balance(rt, alice.account_id) == (cny("10"), 0)


async def test_the_server_queue_deadline_is_enforced_when_a_claim_reaches_the_run(rt, http):
    """``WFRUN_WORKER__MAX_QUEUE_SECONDS``: a run claimed after its deadline is not started."""
    rt.settings.worker.max_queue_seconds = 0.2
    owner = await operator(rt)
    workflow_id = (
        await catalog.import_package(rt.db, owner_id=owner, document=sleepy_package(), publish=True)
    ).workflow_id
    alice = await customer(rt)
    run_id = await submit(http, alice, workflow_id, "late")
    submitted = utcnow()

    async def deadline_passed() -> bool:
        return utcnow() > submitted + timedelta(seconds=0.2)

    await until(deadline_passed, what="the queue deadline to pass")
    await drain(rt)  # a claim reaches it: no sweep involved
    view = await api.execution(http, alice, run_id)
    assert (view["status"], view["error"]["engine_code"]) == ("failed", "QUEUE_TIMEOUT")
    assert view["error"]["detail"] == (
        "not started within its queue deadline of 0.2 s; the whole freeze was released"
    )
    assert_bill(await api.info(http, alice, run_id), released(QUOTE))
    assert await account_balance(rt, alice.account_id) == (cny("10"), 0)


async def test_a_package_may_not_raise_the_server_queue_deadline(rt, http):
    rt.settings.worker.max_queue_seconds = 60
    owner = await operator(rt)
    low = await catalog.import_package(
        rt.db, owner_id=owner, document=sleepy_package() | {"max_queue_seconds": 5}, publish=True
    )
    high = await catalog.import_package(
        rt.db,
        owner_id=owner,
        document=sleepy_package() | {"slug": "sleepy-high", "max_queue_seconds": 600},
        publish=True,
    )
    alice = await customer(rt)
    for result, limit in ((low, 5), (high, 60)):
        run_id = await submit(http, alice, result.workflow_id, f"k{limit}")
        info = await api.info(http, alice, run_id)
        job = await _job(rt, run_id)
        assert job.start_by is not None
        assert round((job.start_by - job.created_at).total_seconds()) == limit, info
    await drain(rt)


async def _job(rt: Runtime, run_id: str) -> Any:
    from wfrun.queue import lanes

    async with rt.db.transaction() as conn:
        return await lanes.waiting_job(conn, run_id)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_instance_becoming_usable_wakes_the_workers(rt, http, standin):
    """PostgreSQL notifies waiting workers when an instance becomes active and healthy (SQLite
    has no NOTIFY: workers in other processes find it at their next poll)."""
    added = await instances.add_instance(rt.db, url=standin.base_url, capacity=1, labels={})
    workflow_id = await publish(rt, sleepy_comfy())
    await instances.drain_instance(rt.db, added.id)
    alice = await customer(rt)
    # Its own wake-up event, not the API's: only the database can wake it within a minute.
    sleepy = Worker(rt, settings=WorkerSettings(poll_interval=60, lease_seconds=5))
    async with api.running_worker(rt, sleepy):
        run_id = await submit(http, alice, workflow_id, "waits")
        await until(lambda: _reason_is(http, alice, run_id), what="the run to wait")
        await instances.drain_instance(rt.db, added.id, resume=True)
        charged = await settle_all(http, alice, [run_id])
    assert await account_balance(rt, alice.account_id) == (cny("10") - charged, 0)


async def _reason_is(http: httpx.AsyncClient, who: Customer, run_id: str) -> bool:
    view = await api.execution(http, who, run_id)
    reason: str = view["queue_info"]["reason"]
    return reason == "no healthy comfyui instance: 0 of 1 healthy and active"
