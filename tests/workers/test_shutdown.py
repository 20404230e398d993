"""Stopping a worker (issue 11): after the stop request it claims nothing more, even when a
slot frees; its runs in flight finish within the drain time; what is unfinished when the drain
time is up (or on a second request) is handed back to the queue at once — the next worker takes
it without waiting for a lease, and every run is charged once.

ComfyUI stand-in holds keep runs running or pending on the instance until the test releases
them, so nothing here races a timer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from tests.support import api
from tests.support.factories import Customer, customer, operator, sleepy_package
from tests.support.money import assert_bill, cny, execution_ms, success
from tests.support.waiting import until
from wfrun.db.schema import jobs
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances
from wfrun.services.claims import engine_prompt_id
from wfrun.workers.worker import Worker

QUOTE = cny("0.11")  # fee 0.01 + 10 estimated seconds at 0.01


@pytest.fixture
async def rt(runtime: Runtime, standin: ComfyStandin) -> Runtime:
    await runtime.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    runtime.engines["comfyui"] = ComfyUIEngine("wfrun-stop", settings=FAST)
    await instances.add_instance(runtime.db, url=standin.base_url, capacity=2, labels={})
    return runtime


async def _workflow(rt: Runtime) -> str:
    package = sleepy_package(seconds=0)
    package.update(engine="comfyui", slug="sleepy-comfy")
    imported = await catalog.import_package(
        rt.db, owner_id=await operator(rt), document=package, publish=True
    )
    return imported.workflow_id


def _worker(rt: Runtime, *, drain_seconds: float) -> Worker:
    settings = rt.settings.worker.model_copy(
        update={"concurrency": 2, "drain_seconds": drain_seconds}
    )
    return Worker(rt, settings=settings)


async def _jobs(rt: Runtime, run_ids: list[str]) -> dict[str, Any]:
    async with rt.db.transaction() as conn:
        rows = (await conn.execute(select(jobs).where(jobs.c.run_id.in_(run_ids)))).all()
    return {row.run_id: row for row in rows}


class _Started:
    """Two runs in flight on a worker (one running on the instance, held; one pending behind
    it) and a third queued in wfrun, with no free slot for it."""

    def __init__(self, rt: Runtime, http: httpx.AsyncClient, comfy: ComfyStandin) -> None:
        self.rt, self.http, self.comfy = rt, http, comfy
        self.stop, self.hurry = asyncio.Event(), asyncio.Event()

    async def start(self, worker: Worker) -> None:
        workflow_id = await _workflow(self.rt)
        self.alice: Customer = await customer(self.rt, balance="10")
        await self.comfy.hold(running=True)
        self.task = asyncio.create_task(worker.run(self.stop, self.hurry))
        self.running = await self._submit(workflow_id, "running")
        await self.comfy.wait_held(engine_prompt_id(self.running))
        self.pending = await self._submit(workflow_id, "pending")
        await self.comfy.wait_pending(engine_prompt_id(self.pending))
        self.queued = await self._submit(workflow_id, "queued")

    async def _submit(self, workflow_id: str, key: str) -> str:
        submitted = await api.submit(self.http, self.alice, workflow_id, key, {})
        run_id: str = submitted["run_order_id"]
        return run_id

    async def request_stop(self, caplog: pytest.LogCaptureFixture) -> None:
        self.stop.set()
        await until(lambda: _logged(caplog, "stopping: claiming nothing more"), what="the stop")


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return _logged_sync(caplog, text)


async def test_a_stopping_worker_finishes_its_runs_and_claims_nothing_more(
    rt, http, standin, caplog
):
    caplog.set_level(logging.INFO, logger="wfrun")
    scene = _Started(rt, http, standin)
    await scene.start(_worker(rt, drain_seconds=600))
    await scene.request_stop(caplog)
    await standin.release()  # both runs finish; each frees a slot the worker must not refill
    await asyncio.wait_for(scene.task, 30)
    assert [r.status for r in (await _jobs(rt, [scene.queued])).values()] == ["todo"]
    assert (await _jobs(rt, [scene.queued]))[scene.queued].attempts == 0
    view = await api.execution(http, scene.alice, scene.queued)
    assert (view["status"], view["queue_info"]["position"]) == ("queued", 1)
    async with api.running_worker(rt):  # the next worker takes it
        await api.wait_status(http, scene.alice, scene.queued, "succeeded")
    for run_id in (scene.running, scene.pending, scene.queued):
        await _assert_charged_once(http, scene.alice, run_id)


@pytest.mark.parametrize("how", ["second request", "drain time up"])
async def test_unfinished_runs_are_handed_back_and_taken_at_once(rt, http, standin, caplog, how):
    caplog.set_level(logging.INFO, logger="wfrun")
    scene = _Started(rt, http, standin)
    await scene.start(_worker(rt, drain_seconds=600 if how == "second request" else 0))
    await scene.request_stop(caplog)
    scene.hurry.set()  # with no drain time the worker hands back without it
    await asyncio.wait_for(scene.task, 30)
    handed = await _jobs(rt, [scene.running, scene.pending, scene.queued])
    for run_id in (scene.running, scene.pending):
        job = handed[run_id]
        assert (job.status, job.lease_until, job.worker_id, job.attempts) == ("todo", None, None, 1)
        assert job.max_attempts == rt.settings.worker.max_attempts + 1  # a stop is no attempt
        view = await api.execution(http, scene.alice, run_id)
        assert view["status"] == "running"
        assert any(e["event_type"] == "handed_back" for e in view["logs"]), view["logs"]
    assert (handed[scene.queued].status, handed[scene.queued].attempts) == ("todo", 0)
    assert _logged_sync(caplog, "handed back 2 unfinished run(s)")
    # the prompts stay on the instance for the next owner: nothing withdrawn or interrupted
    assert (standin.calls("POST", "/interrupt"), standin.calls("POST", "/queue")) == ([], [])
    await standin.release()
    async with api.running_worker(rt, _worker(rt, drain_seconds=600)):
        for run_id in (scene.running, scene.pending, scene.queued):
            await api.wait_status(http, scene.alice, run_id, "succeeded")
    # each prompt was queued once: the next owner attached to the ones it was handed
    posted = [r.json()["prompt_id"] for r in standin.calls("POST", "/prompt")]
    assert sorted(posted) == sorted(
        engine_prompt_id(r) for r in (scene.running, scene.pending, scene.queued)
    )
    # the handed-back runs started again under attempt 2: the hand-back kept the fencing token
    assert {run_id: job.attempts for run_id, job in (await _jobs(rt, [*handed])).items()} == {
        scene.running: 2,
        scene.pending: 2,
        scene.queued: 1,
    }
    for run_id in (scene.running, scene.pending, scene.queued):
        await _assert_charged_once(http, scene.alice, run_id)


def _logged_sync(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


async def _assert_charged_once(http: httpx.AsyncClient, who: Customer, run_id: str) -> None:
    view = await api.execution(http, who, run_id)
    bill = success(
        quote=QUOTE,
        fixed_fee=cny("0.01"),
        price_per_second=cny("0.01"),
        execution_ms=execution_ms(view),
    )
    assert_bill(await api.info(http, who, run_id), bill)
