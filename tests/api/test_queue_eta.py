"""A queued run's ETA through ``run/execution`` from each fact it is computed from, exactly:
the time the busy slot's run has left (a worker lane and an instance lane), and the
revision's measured mean once it has successes. PostgreSQL reads these facts in one
statement, SQLite one statement each (``queue.execution_view``); both must give the same."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import httpx

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from tests.support import api
from tests.support.factories import customer, drain, operator, publish_package, sleepy_package
from tests.support.jobs import started_ago
from wfrun.db.runs import find_run
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.runtime import Runtime
from wfrun.services import claims, instances, worker_registry
from wfrun.services.claims import engine_prompt_id

ESTIMATE_MS = 10_000
"""``sleepy_package``'s ``estimated_seconds``: the typical run before any has succeeded."""
RUN_FOR = 4
"""Seconds the busy slot's run has been running when the queued run is looked at."""
LEFT = {math.ceil((ESTIMATE_MS - RUN_FOR * 1000) / 1000), 5}
"""The ETA of the next run: what the running one has left (a second's slack for the time
between backdating its start and reading the view on a loaded machine)."""


async def test_the_next_run_waits_for_what_the_busy_worker_slot_has_left(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    alice = await customer(runtime)
    await worker_registry.register_worker(
        runtime.db, worker_id="w", hostname="h", pid=1, concurrency=1
    )
    running = (await api.submit(http, alice, workflow_id, "running"))["run_order_id"]
    claim = await claims.claim_next(runtime.db, worker_id="w", lease=timedelta(minutes=5))
    assert isinstance(claim, claims.Claim)
    queued = (await api.submit(http, alice, workflow_id, "queued"))["run_order_id"]
    await started_ago(runtime, running, RUN_FOR)
    info = (await api.execution(http, alice, queued))["queue_info"]
    assert (info["position"], info["reason"]) == (
        1,
        "next in lane local; all 1 worker slots are busy",
    )
    assert info["estimated_wait_sec"] in LEFT


async def test_the_eta_takes_the_revisions_measured_mean_once_a_run_succeeded(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    """The burst worker that ran it is still live, with one slot: two runs ahead take the
    mean each."""
    package = sleepy_package(seconds=0.6)
    workflow_id = await publish_package(runtime, await operator(runtime), package)
    alice = await customer(runtime)
    done = (await api.submit(http, alice, workflow_id, "done"))["run_order_id"]
    runtime.settings.worker.concurrency = 1
    await drain(runtime)
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, done)
    assert run is not None
    assert run.execution_ms is not None
    keys = ("q1", "q2", "q3")
    waiting = [(await api.submit(http, alice, workflow_id, k))["run_order_id"] for k in keys]
    info = (await api.execution(http, alice, waiting[2]))["queue_info"]
    assert info == {
        "position": 3,
        "estimated_wait_sec": math.ceil(2 * run.execution_ms / 1000),
        "reason": "2 runs ahead in lane local",
    }


def _sleepy_comfy() -> dict[str, Any]:
    package = sleepy_package(seconds=0)
    package.update(engine="comfyui", slug="sleepy-comfy")
    return package


async def test_the_next_run_waits_for_what_the_busy_instance_slot_has_left(
    runtime: Runtime, http: httpx.AsyncClient, standin: ComfyStandin
) -> None:
    await runtime.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    runtime.engines["comfyui"] = ComfyUIEngine("wfrun-eta", settings=FAST)
    await instances.add_instance(runtime.db, url=standin.base_url, capacity=1, labels={})
    workflow_id = await publish_package(runtime, await operator(runtime), _sleepy_comfy())
    alice = await customer(runtime)
    await standin.hold(running=True, node="2")
    async with api.running_worker(runtime):
        running = (await api.submit(http, alice, workflow_id, "running"))["run_order_id"]
        await standin.wait_held(engine_prompt_id(running))
        queued = (await api.submit(http, alice, workflow_id, "queued"))["run_order_id"]
        await started_ago(runtime, running, RUN_FOR)
        info = (await api.execution(http, alice, queued))["queue_info"]
        await standin.release()
        for run_id in (running, queued):
            assert (await api.wait_status(http, alice, run_id))["status"] == "succeeded"
    reason = "next in lane comfyui; all 1 instance slots are busy"
    assert (info["position"], info["reason"]) == (1, reason)
    assert info["estimated_wait_sec"] in LEFT
