"""How one wfrun worker keeps up with many in-flight Seedance tasks, on PostgreSQL.

    .venv/bin/python -m benchmarks.seedance_tracking [--tasks 2000] [--batch 500]

``--tasks`` model runs are submitted and dispatched against the Ark stand-in (loopback), each
task held in Ark's queue. Then one full round of status checks is timed two ways, in the same
run, with the same official-SDK client:

- baseline: what a poller per task does, one ``GET /contents/generations/tasks/{id}`` each
  (64 concurrent);
- wfrun's tracker: ``Tracker.tick()`` until every task was checked once (one list call per
  ``--batch`` tasks, plus the database claim and re-schedule of each batch).

Prints tasks checked per second for both and the ratio, and the HTTP calls each made.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
import uuid
from pathlib import Path

from tests.conftest import make_settings
from tests.seedance.ark_standin import ArkStandin, TaskPlan
from tests.seedance.conftest import seedance_settings
from tests.support.databases import create_pg_database, drop_pg_database, pg_url
from tests.support.factories import customer

from wfrun.runtime import Runtime, build_runtime
from wfrun.services import model_runs
from wfrun.services.accounts import authenticate
from wfrun.workers.seedance import Tracker
from wfrun.workers.worker import Worker

_MODEL = "doubao-seedance-2-0-fast-260128"


async def _populate(runtime: Runtime, n: int) -> None:
    alice = await customer(runtime, balance=str(10 * n))
    principal = await authenticate(runtime.db, alice.key)
    for i in range(n):
        body = model_runs.VideoSubmit(
            idempotency_key=f"b{i}", request_id=f"b{i}", inputs={"model": _MODEL, "prompt": "x"}
        )
        await model_runs.submit(
            runtime.db, principal, body, runtime.policy, runtime.settings.seedance
        )
    worker = Worker(runtime)
    await worker.register()
    while await worker._claim_and_start() == "started":
        if len(worker._active) >= 32:
            await asyncio.gather(*(a.task for a in list(worker._active.values())))
    await asyncio.gather(*(a.task for a in list(worker._active.values())))


async def _baseline(runtime: Runtime, task_ids: list[str]) -> float:
    assert runtime.seedance is not None
    gateway = runtime.seedance.ark
    gate = asyncio.Semaphore(64)

    async def one(task_id: str) -> None:
        async with gate:
            view = await gateway.get(task_id)
            assert view is not None

    started = time.perf_counter()
    await asyncio.gather(*(one(t) for t in task_ids))
    return time.perf_counter() - started


async def _tracked(runtime: Runtime, n: int, batch: int) -> float:
    assert runtime.seedance is not None
    settings = runtime.seedance.settings.model_copy(
        update={"tracker_batch": batch, "poll_min_seconds": 600.0, "poll_max_seconds": 600.0}
    )
    tracker = Tracker(dataclasses.replace(runtime.seedance, settings=settings))
    checked = 0
    started = time.perf_counter()
    while checked < n:
        handled = await tracker.tick()
        assert handled, "tasks were not due"
        checked += handled
    return time.perf_counter() - started


async def main(n: int, batch: int) -> None:
    standin = ArkStandin().launch()
    name = f"wfrun_bench_track_{uuid.uuid4().hex[:8]}"
    await create_pg_database(name)
    try:
        with tempfile.TemporaryDirectory() as folder:
            base = make_settings(pg_url(name), Path(folder))
            group = standin._new_group("p", "", "LivenessFace", "default").id
            settings = base.model_copy(
                update={"seedance": seedance_settings(standin, group, request_timeout_seconds=60)}
            )
            for _ in range(n):
                standin.next_task(TaskPlan(hold_queued=True))
            runtime = await build_runtime(settings)
            try:
                await _populate(runtime, n)
                task_ids = [t.id for t in standin.live_tasks()]
                assert len(task_ids) == n
                before = len(standin.requests)
                base_s = await _baseline(runtime, task_ids)
                base_calls = len(standin.requests) - before
                before = len(standin.requests)
                tracked_s = await _tracked(runtime, n, batch)
                tracked_calls = len(standin.requests) - before
            finally:
                await runtime.close()
    finally:
        await drop_pg_database(name)
        standin.shutdown()
    print(f"{n} in-flight tasks, one status round")
    print(f"  per-task GET polling : {n / base_s:8.0f} tasks/s  ({base_calls} HTTP calls)")
    print(
        f"  wfrun tracker        : {n / tracked_s:8.0f} tasks/s  ({tracked_calls} HTTP calls, "
        f"batch {batch}, incl. database claim + re-schedule)"
    )
    print(f"  ratio tracker/baseline: {base_s / tracked_s:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.batch))
