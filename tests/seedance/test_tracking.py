"""Many in-flight Ark tasks are tracked by one worker in batches, not a poller per task."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from urllib.parse import parse_qsl

from sqlalchemy import select

from tests.seedance.ark_standin import ArkStandin, TaskPlan
from tests.seedance.conftest import dispatch_only
from tests.support.factories import account_balance, customer, drain
from wfrun.clock import utcnow
from wfrun.db.schema import jobs
from wfrun.domain.money import parse_amount
from wfrun.queue import broker
from wfrun.runtime import Runtime
from wfrun.services import model_runs, provider_runs
from wfrun.services.accounts import authenticate
from wfrun.workers.seedance import Tracker
from wfrun.workers.worker import Worker

RUNS = 240
BATCH = 100
TASKS = "/api/v3/contents/generations/tasks"


def _lists(standin: ArkStandin) -> list[list[str]]:
    """The task ids each list call asked about."""
    return [
        [v for k, v in parse_qsl(r.query) if k == "filter.task_ids"]
        for r in standin.calls("GET", TASKS)
    ]


async def test_one_worker_tracks_hundreds_of_tasks_with_one_list_call_per_batch(
    runtime: Runtime, standin: ArkStandin
):
    for _ in range(RUNS):  # every task waits in Ark's queue until released
        standin.next_task(TaskPlan(hold_queued=True))
    alice = await customer(runtime, balance="2000")
    principal = await authenticate(runtime.db, alice.key)
    for i in range(RUNS):
        body = model_runs.VideoSubmit(
            idempotency_key=f"bulk-{i}",
            request_id=f"bulk-{i}",
            inputs={"model": "doubao-seedance-2-0-fast-260128", "prompt": f"clip {i}"},
        )
        await model_runs.submit(
            runtime.db, principal, body, runtime.policy, runtime.settings.seedance
        )
    worker = Worker(runtime)
    await worker.register()
    while await worker._claim_and_start() == "started":  # dispatch: create + park each run
        pass
    await asyncio.gather(*(a.task for a in list(worker._active.values())))
    assert len(standin.live_tasks()) == RUNS

    assert runtime.seedance is not None
    settings = runtime.seedance.settings.model_copy(
        update={"tracker_batch": BATCH, "poll_min_seconds": 600.0, "poll_max_seconds": 600.0}
    )
    deps = dataclasses.replace(runtime.seedance, settings=settings)
    tracker = Tracker(deps)
    before = len(standin.requests)
    checked = [await tracker.tick() for _ in range(3)]
    assert checked == [BATCH, BATCH, RUNS - 2 * BATCH]
    calls = standin.requests[before:]
    assert len(calls) == 3  # three list calls for 240 tasks: no per-task GET
    assert all(r.method == "GET" and r.path == TASKS for r in calls)
    assert sorted(len(ids) for ids in _lists(standin)[-3:]) == [RUNS - 2 * BATCH, BATCH, BATCH]

    for task in standin.live_tasks():
        standin.release(task.id, running_s=0.0)
    async with runtime.db.transaction(write=True) as conn:  # ten minutes later: all due
        due = (await conn.execute(select(jobs.c.id).where(jobs.c.status == "tracking"))).scalars()
        await broker.track_again(conn, job_ids=list(due), at=utcnow())
    before = len(standin.requests)
    assert [await tracker.tick() for _ in range(4)] == [BATCH, BATCH, RUNS - 2 * BATCH, 0]
    lists = [r for r in standin.requests[before:] if r.path == TASKS]
    assert len(lists) == 3  # then each finished run downloads its video once
    assert len([r for r in standin.requests[before:] if r.path.startswith("/tos/")]) == RUNS
    available, frozen = await account_balance(runtime, alice.account_id)
    assert frozen == 0
    # each: Ark renders adaptive 720p as 1280×720, 5 s = 108 900 tokens at 37 CNY per million
    assert available == parse_amount("2000") - RUNS * 108_900 * parse_amount("37") // 10**6
    assert len(standin.creates()) == RUNS


async def test_a_run_held_by_one_tracker_is_not_taken_by_another(runtime, standin: ArkStandin):
    """A callback or a cancel makes a run due at once, but never hands it to a second tracker
    while the first still holds it (a racing copy could otherwise clobber the output)."""
    standin.next_task(TaskPlan(hold_queued=True))
    alice = await customer(runtime, balance="20")
    principal = await authenticate(runtime.db, alice.key)
    body = model_runs.VideoSubmit(
        "one", "one", {"model": "doubao-seedance-2-0-fast-260128"} | {"prompt": "x"}
    )
    run = (
        await model_runs.submit(
            runtime.db, principal, body, runtime.policy, runtime.settings.seedance
        )
    ).run
    await dispatch_only(runtime)
    async with runtime.db.transaction(write=True) as conn:
        await broker.expedite(conn, run.id, utcnow())
    first = await provider_runs.claim_tracked(runtime.db, limit=10, lease=timedelta(minutes=5))
    assert [t.run.id for t in first] == [run.id]
    async with runtime.db.transaction(write=True) as conn:
        await broker.expedite(conn, run.id, utcnow())  # e.g. Ark's callback arrives
    assert await provider_runs.claim_tracked(runtime.db, limit=10, lease=timedelta(minutes=5)) == []
    await provider_runs.check_later(runtime.db, [(first[0], utcnow())])  # the holder is done
    again = await provider_runs.claim_tracked(runtime.db, limit=10, lease=timedelta(minutes=5))
    assert [t.run.id for t in again] == [run.id]
    await provider_runs.check_later(runtime.db, [(again[0], utcnow())])
    [task] = standin.live_tasks()
    standin.release(task.id, running_s=0.0)
    await drain(runtime)


async def _parked(runtime: Runtime, standin: ArkStandin, runs: int) -> None:
    """``runs`` model runs dispatched to Ark, each task held in Ark's queue."""
    alice = await customer(runtime, balance="100")
    principal = await authenticate(runtime.db, alice.key)
    for i in range(runs):
        standin.next_task(TaskPlan(hold_queued=True))
        body = model_runs.VideoSubmit(
            f"p-{i}", f"p-{i}", {"model": "doubao-seedance-2-0-fast-260128", "prompt": "x"}
        )
        await model_runs.submit(
            runtime.db, principal, body, runtime.policy, runtime.settings.seedance
        )
        await dispatch_only(runtime)


async def _all_due(runtime: Runtime) -> None:
    async with runtime.db.transaction(write=True) as conn:
        due = (await conn.execute(select(jobs.c.id).where(jobs.c.status == "tracking"))).scalars()
        await broker.track_again(conn, job_ids=list(due), at=utcnow())


async def _job_states(runtime: Runtime) -> list[str]:
    async with runtime.db.transaction() as conn:
        return sorted((await conn.execute(select(jobs.c.status))).scalars().all())


async def test_a_status_check_whose_connection_drops_is_sent_again_at_once(
    runtime: Runtime, standin: ArkStandin
):
    """A list call that loses its connection before any answer (an idle keep-alive connection
    closed by the server as it is reused) is a read: sent once more, the batch is checked in
    the same tick. Two drops in a row: the batch is checked later, nothing fails."""
    await _parked(runtime, standin, 2)
    assert runtime.seedance is not None
    slow = {"poll_min_seconds": 600.0, "poll_max_seconds": 600.0}
    settings = runtime.seedance.settings.model_copy(update=slow)
    tracker = Tracker(dataclasses.replace(runtime.seedance, settings=settings))
    await _all_due(runtime)
    standin.drop_next_list()
    before = len(standin.requests)
    assert await tracker.tick() == 2
    assert len(standin.requests) - before == 2  # the dropped list call and the one answered
    assert await _job_states(runtime) == ["tracking", "tracking"]

    await _all_due(runtime)
    standin.drop_next_list(times=2)
    before = len(standin.requests)
    assert await tracker.tick() == 2  # the second try dropped too: checked again later
    assert await tracker.tick() == 0  # not due now
    assert len(standin.requests) - before == 2
    for task in standin.live_tasks():
        standin.release(task.id, running_s=0.0)
    await _all_due(runtime)
    assert await tracker.tick() == 2
    assert await _job_states(runtime) == ["succeeded", "succeeded"]
