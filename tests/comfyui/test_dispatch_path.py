"""The tight engine path (issue 11): a first dispatch submits without lookups, a re-dispatch
still re-attaches, and ComfyUI's ``progress`` messages move a run's percentage within a node.

Through the real claim → runner → ComfyUIEngine path against the stand-in, which records every
HTTP request and is held (``hold``) instead of raced.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.comfyui.helpers import FAST, RecordingSink, sleepy
from tests.comfyui.standin import ComfyStandin
from tests.support.factories import Customer, customer, drain, operator, sleepy_package
from tests.support.statements import counting
from tests.support.waiting import until
from wfrun.db import outbox
from wfrun.db.runs import Run, find_run, list_events
from wfrun.domain.runs import RunStatus
from wfrun.engines.base import RunSpec
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.engines.comfyui.events import ComfyEvent
from wfrun.engines.comfyui.progress import ProgressTracker
from wfrun.engines.local.engine import LocalEngine
from wfrun.runtime import Runtime
from wfrun.services import catalog, claims, instances, runs
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim, engine_prompt_id
from wfrun.workers.runner import RunControl, RunnerDeps, run_claim
from wfrun.workers.worker import Worker

LOOKUPS = ("/queue", "/history")


def sleepy_comfy(seconds: float) -> dict[str, Any]:
    package = sleepy_package(seconds=seconds)
    package.update(engine="comfyui", slug="sleepy-comfy")
    return package


async def submit(rt: Runtime, standin: ComfyStandin, seconds: float) -> tuple[str, Customer]:
    await instances.add_instance(rt.db, url=standin.base_url, capacity=1, labels={})
    owner = await operator(rt)
    imported = await catalog.import_package(
        rt.db, owner_id=owner, document=sleepy_comfy(seconds), publish=True
    )
    alice = await customer(rt, balance="10")
    principal = Principal(alice.account_id, "key_test", "alice")
    request = runs.RunRequest(
        workflow_id=imported.workflow_id, revision_id=None, inputs={}, idempotency_key="d"
    )
    return (await runs.submit_run(rt.db, principal, request, rt.policy)).run.id, alice


def deps_with(rt: Runtime, engine: ComfyUIEngine) -> RunnerDeps:
    """A worker's runner dependencies, its ComfyUI engine given test timings."""
    deps = Worker(rt).deps
    return replace(deps, engines={**deps.engines, "comfyui": engine})


async def claim(rt: Runtime, worker_id: str, lease: float) -> Claim:
    claimed: list[Claim] = []

    async def claimed_one() -> bool:
        got = await claims.claim_next(rt.db, worker_id=worker_id, lease=timedelta(seconds=lease))
        if isinstance(got, Claim):
            claimed.append(got)
        return bool(claimed)

    await until(claimed_one, what=f"a claim by {worker_id}")
    return claimed[0]


def paths_before_submit(standin: ComfyStandin) -> list[str]:
    paths = [(r.method, r.path.removeprefix("/api")) for r in list(standin.requests)]
    return [path for method, path in paths[: paths.index(("POST", "/prompt"))]]


async def test_first_dispatch_submits_without_lookups_and_redispatch_reattaches(
    runtime: Runtime, standin: ComfyStandin
) -> None:
    run_id, _ = await submit(runtime, standin, seconds=0.1)
    prompt_id = engine_prompt_id(run_id)
    await standin.hold(pending=True)  # the prompt stays queued until released
    first_engine = ComfyUIEngine("worker-1", settings=FAST)
    second_engine = ComfyUIEngine("worker-2", settings=FAST)
    try:
        first = await claim(runtime, "worker-1", lease=0.3)
        assert (first.attempt, first.first_dispatch) == (1, True)
        crashed = asyncio.create_task(
            run_claim(deps_with(runtime, first_engine), first, RunControl())
        )
        await standin.wait_pending(prompt_id)
        before = paths_before_submit(standin)
        assert not [p for p in before if p.startswith(LOOKUPS)], before

        # worker-1 stops heartbeating: its lease lapses and worker-2 re-dispatches the run
        second = await claim(runtime, "worker-2", lease=30)
        assert (second.attempt, second.first_dispatch) == (2, False)
        lookups = len(standin.calls("GET", "/queue"))
        redispatch = asyncio.create_task(
            run_claim(deps_with(runtime, second_engine), second, RunControl())
        )
        await until(
            lambda: _async(len(standin.calls("GET", "/queue")) > lookups),
            what="the re-dispatch looking the prompt up",
        )
        await standin.release()
        await asyncio.wait_for(redispatch, 30)
        await asyncio.wait_for(crashed, 30)  # its completion is fenced out
    finally:
        await first_engine.aclose()
        await second_engine.aclose()
    assert len(standin.calls("POST", "/prompt")) == 1  # attached, never queued twice
    assert (await run_row(runtime, run_id)).status is RunStatus.SUCCEEDED


async def test_progress_messages_move_the_percentage_within_a_node(
    runtime: Runtime, standin: ComfyStandin, http: httpx.AsyncClient
) -> None:
    """EmptyImage → TestSleep (2 s) → ImageInvert → SaveImage: the sleep is the second of four
    nodes, so node boundaries alone only ever show 0, 25, 50, 75 %; ComfyUI's ``progress``
    messages (seconds slept of 2) must show a percentage strictly inside 25–50 while the sleep
    runs (issue 11: it sat at 44 % through a 3 s node)."""
    run_id, alice = await submit(runtime, standin, seconds=2.0)
    draining = asyncio.create_task(drain(runtime))
    seen: list[int] = []

    async def inside_the_sleep() -> bool:
        params = {"run_order_id": run_id}
        view = await http.get("/workflow/run/execution", params=params, headers=alice.headers)
        seen.append(view.json()["data"]["progress_percent"])
        return 25 < seen[-1] < 50

    try:
        await until(inside_the_sleep, what="a percentage inside the sleeping node")
    finally:
        await draining
    assert (await run_row(runtime, run_id)).status is RunStatus.SUCCEEDED
    assert seen == sorted(seen)  # never moves backwards


async def test_tracker_passes_progress_of_the_running_node_on() -> None:
    graph = sleepy(0.3)
    sink = ProgressSinkWithFractions()
    tracker = ProgressTracker(graph, ["1", "2", "3"], sink)
    events: list[tuple[str, dict[str, Any]]] = [
        ("executing", {"node": "1"}),
        ("progress", {"node": "1", "value": 1, "max": 4}),
        ("executing", {"node": "2"}),
        ("progress", {"node": "2", "value": 0.15, "max": 0.3}),
        ("progress", {"node": "3", "value": 1, "max": 2}),  # not started: ignored
        ("progress", {"node": "2", "value": 0.3, "max": 0}),  # no maximum: ignored
    ]
    for kind, data in events:
        await tracker.on_event(ComfyEvent(kind, data | {"prompt_id": "p"}))
    assert sink.fractions == [("1", "EmptyImage", 0, 3, 0.25), ("2", "TestSleep", 1, 3, 0.5)]


async def test_local_engine_reports_progress_of_a_long_node() -> None:
    sink = ProgressSinkWithFractions()
    spec = RunSpec(run_id="local", attempt=1, graph=sleepy(0.5))
    await LocalEngine().execute(spec, sink, threading.Event())
    assert sink.fractions, "no progress reported while TestSleep slept"
    assert {call[:4] for call in sink.fractions} == {("2", "TestSleep", 1, 3)}
    fractions = [call[4] for call in sink.fractions]
    assert fractions == sorted(fractions)
    assert 0 <= fractions[0] <= fractions[-1] < 1
    assert sink.calls.index(("started", "2", "TestSleep", 1, 3)) < sink.calls.index(
        ("finished", "2", "TestSleep", 1, 3)
    )


class ProgressSinkWithFractions(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.fractions: list[tuple[str, str, int, int, float]] = []

    async def node_progress(
        self, node_id: str, class_type: str, index: int, total: int, fraction: float
    ) -> None:
        self.fractions.append((node_id, class_type, index, total, fraction))


async def run_row(rt: Runtime, run_id: str) -> Run:
    async with rt.db.transaction() as conn:
        row = await find_run(conn, run_id)
    assert row is not None
    return row


async def _async(value: bool) -> bool:
    return value


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_instance_run_starts_with_its_log_line_and_change_in_one_statement(
    runtime: Runtime, standin: ComfyStandin
) -> None:
    """The general claim path (a run placed on an instance) moves the run, logs its start and
    publishes the change in one statement (``db.run_start``), not three."""
    run_id, _ = await submit(runtime, standin, seconds=0.1)
    async with counting(runtime.db) as trips:
        started = await claim(runtime, "worker-1", lease=30)
    assert (started.run.id, started.run.status, started.instance_url) == (
        run_id,
        RunStatus.RUNNING,
        standin.base_url,
    )
    (one,) = [s for s in trips.statements if s.lstrip().startswith("WITH moved AS")]
    assert "INSERT INTO run_events" in one, one
    assert "INSERT INTO outbox_events" in one, one
    alone = [s.split("(")[0].strip() for s in trips.statements if s.startswith("INSERT INTO")]
    assert not {"INSERT INTO run_events", "INSERT INTO outbox_events"} & set(alone), alone
    async with runtime.db.transaction() as conn:
        lines = [
            (e.event_type, e.attempt, e.message) for e in await list_events(conn, run_id, limit=10)
        ]
        changes = [
            (e.event_type, e.previous_status, e.status, e.attempt, e.data)
            for e in await outbox.for_run(conn, run_id)
        ]
    assert lines[-1] == ("started", 1, "started (attempt 1)")
    assert changes[1:] == [
        (
            "run.started",
            "queued",
            "running",
            1,
            {
                "family": "workflow",
                "workflow_id": started.run.workflow_id,
                "error_code": None,
                "final_amount": None,
            },
        )
    ]
