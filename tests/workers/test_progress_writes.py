"""The worker's progress sink (workers.progress) against a real database: reports from the
engine become at most one transaction per interval, nothing reported is lost, and a boundary
followed by a silent node still shows without another report."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from tests.support.factories import customer, drain, operator, publish_package, sleepy_package
from tests.support.statements import counting
from tests.support.waiting import until
from wfrun.db.runs import Run, RunEvent, find_run, list_events
from wfrun.runtime import Runtime
from wfrun.services import claims, runs
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim
from wfrun.workers.progress import ProgressRecorder

HOUR = 3600.0


async def claimed(rt: Runtime) -> Claim:
    workflow_id = await publish_package(rt, await operator(rt), sleepy_package(seconds=0))
    alice = await customer(rt, balance="1")
    principal = Principal(alice.account_id, "key_test", "alice")
    request = runs.RunRequest(
        workflow_id=workflow_id, revision_id=None, inputs={}, idempotency_key="p"
    )
    await runs.submit_run(rt.db, principal, request, rt.policy)
    claim = await claims.claim_next(rt.db, worker_id="w", lease=timedelta(seconds=60))
    assert isinstance(claim, Claim)
    return claim


async def state(rt: Runtime, claim: Claim) -> tuple[Run, list[RunEvent]]:
    async with rt.db.transaction() as conn:
        run = await find_run(conn, claim.run.id)
        events = await list_events(conn, claim.run.id, limit=100)
    assert run is not None
    return run, [e for e in events if e.event_type in ("executing", "executed")]


async def test_reports_within_the_interval_wait_for_the_flush(runtime: Runtime) -> None:
    claim = await claimed(runtime)
    recorder = ProgressRecorder(runtime.db, claim, interval=HOUR)
    await recorder.node_started("1", "EmptyImage", 0, 4)  # the first report: written soon

    async def first_written() -> bool:
        return len((await state(runtime, claim))[1]) == 1

    await until(first_written, what="the first report's background write")
    run, lines = await state(runtime, claim)
    assert (run.progress_percent, [e.node_id for e in lines]) == (0, ["1"])

    await recorder.node_finished("1", "EmptyImage", 0, 4)
    await recorder.node_started("2", "TestSleep", 1, 4)
    for step in range(1, 100):
        await recorder.node_progress("2", "TestSleep", 1, 4, step / 100)
    run, lines = await state(runtime, claim)
    assert (run.progress_percent, len(lines)) == (0, 1)  # nothing written within the hour

    await recorder.flush()
    recorder.close()
    run, lines = await state(runtime, claim)
    assert run.progress_percent == 49  # (1 + 0.96) of 4 nodes: 0.97–0.99 add no percent
    assert run.progress_snapshot == {
        "node_id": "2",
        "class_type": "TestSleep",
        "completed_nodes": 1,
        "total_nodes": 4,
        "node_fraction": 0.96,
    }
    assert [(e.event_type, e.node_id, e.progress_percent) for e in lines] == [
        ("executing", "1", 0),
        ("executed", "1", 25),
        ("executing", "2", 25),
    ]


async def test_a_boundary_before_a_silent_node_is_written_by_the_timer(
    runtime: Runtime,
) -> None:
    claim = await claimed(runtime)
    recorder = ProgressRecorder(runtime.db, claim, interval=0.05)
    try:
        await recorder.node_started("1", "EmptyImage", 0, 4)
        await recorder.node_finished("1", "EmptyImage", 0, 4)
        await recorder.node_started("2", "TestSleep", 1, 4)  # ... then nothing for a while

        async def shown() -> bool:
            run, lines = await state(runtime, claim)
            return run.progress_snapshot is not None and len(lines) == 3

        await until(shown, what="the timer writing the waiting boundaries")
        run, _ = await state(runtime, claim)
        assert run.progress_snapshot is not None
        assert (run.progress_percent, run.progress_snapshot["node_id"]) == (25, "2")
    finally:
        recorder.close()


async def test_the_last_node_is_written_at_once_and_flush_waits_for_it(
    runtime: Runtime,
) -> None:
    claim = await claimed(runtime)
    recorder = ProgressRecorder(runtime.db, claim, interval=HOUR)
    for index, node_id in enumerate(["1", "2"]):
        await recorder.node_started(node_id, "EmptyImage", index, 2)
        await recorder.node_finished(node_id, "EmptyImage", index, 2)

    async def all_written() -> bool:
        return len((await state(runtime, claim))[1]) == 4

    await until(all_written, what="the last node's boundary written without a flush")
    await recorder.flush()  # nothing left: no error, nothing written twice
    recorder.close()
    run, lines = await state(runtime, claim)
    assert (run.progress_percent, len(lines)) == (99, 4)


async def test_a_prompt_done_within_the_gather_time_writes_its_progress_once(
    runtime: Runtime,
) -> None:
    """The first report waits ``gather`` before its write, so a prompt that ends meanwhile
    (its last node's boundary is written at once) makes one transaction of every line."""
    claim = await claimed(runtime)
    recorder = ProgressRecorder(runtime.db, claim, interval=HOUR, gather=HOUR)
    async with counting(runtime.db) as trips:
        for index, node_id in enumerate(["1", "2", "3"]):
            await recorder.node_started(node_id, "EmptyImage", index, 3)
            for _ in range(5):  # loop turns, as between WebSocket frames: no write starts
                await asyncio.sleep(0)
            await recorder.node_finished(node_id, "EmptyImage", index, 3)
        await recorder.flush()
    recorder.close()
    assert trips.transactions == 1, trips.explain()
    run, lines = await state(runtime, claim)
    assert (run.progress_percent, len(lines)) == (99, 6)


async def test_progress_that_does_not_move_a_whole_percent_is_not_kept(
    runtime: Runtime,
) -> None:
    claim = await claimed(runtime)
    recorder = ProgressRecorder(runtime.db, claim, interval=0.0)  # every change written
    await recorder.node_started("2", "TestSleep", 1, 4)
    await recorder.node_progress("2", "TestSleep", 1, 4, 0.5)
    await recorder.node_progress("2", "TestSleep", 1, 4, 0.51)  # still 37 %
    await recorder.flush()
    recorder.close()
    run, _ = await state(runtime, claim)
    assert run.progress_percent == 37
    assert run.progress_snapshot is not None
    assert run.progress_snapshot["node_fraction"] == 0.5


async def test_a_long_builtin_node_moves_the_percentage_within_itself(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    """The built-in engine's TestSleep (second of four nodes) reports the seconds slept: the
    run's percentage moves strictly inside 25–50 % while it sleeps, not only at its ends."""
    workflow_id = await publish_package(
        runtime, await operator(runtime), sleepy_package(seconds=2.0)
    )
    alice = await customer(runtime, balance="1")
    body = {"workflow_id": workflow_id, "idempotency_key": "long", "inputs": {}}
    submitted = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    run_id = submitted.json()["data"]["run_order_id"]
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
    assert seen == sorted(seen)
    params = {"run_order_id": run_id}
    view = await http.get("/workflow/run/execution", params=params, headers=alice.headers)
    assert (view.json()["data"]["status"], view.json()["data"]["progress_percent"]) == (
        "succeeded",
        100,
    )
