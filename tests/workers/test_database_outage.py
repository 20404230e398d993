"""A worker outlives a database outage: registering and claiming fail as ``DatabaseUnavailable``
(one warning line each, with backoff), the process keeps going, and work resumes once the
database is back. SQLite here (an outage is a write lock held past the busy timeout); the
PostgreSQL server stopped and restarted under real processes is ``tests/chaos``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.chaos.support import pragmas, write_locked_from_a_thread
from tests.support.factories import customer, operator, publish_package, sleepy_package
from tests.support.waiting import until, until_true
from wfrun.db.runs import find_run
from wfrun.errors import DatabaseUnavailable
from wfrun.runtime import Runtime
from wfrun.services import runs
from wfrun.services.accounts import Principal
from wfrun.workers.worker import Worker


async def _status(runtime: Runtime, run_id: str) -> str:
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, run_id)
    assert run is not None
    return str(run.status)


async def _ended(runtime: Runtime, run_id: str) -> str:
    async def status_if_ended() -> str | None:
        status = await _status(runtime, run_id)
        return None if status in ("queued", "running") else status

    return await until(status_if_ended, what=f"run {run_id} to end")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_worker_waits_out_a_database_outage_and_resumes(
    runtime: Runtime, database_url: str, caplog: pytest.LogCaptureFixture
):
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package(seconds=0))
    alice = await customer(runtime, balance="1")
    principal = Principal(alice.account_id, "key_t", "alice")

    async def submit(key: str) -> str:
        request = runs.RunRequest(workflow_id, None, {}, idempotency_key=key)
        return (await runs.submit_run(runtime.db, principal, request, runtime.policy)).run.id

    def warned(prefix: str) -> int:
        return sum(r.getMessage().startswith(prefix) for r in caplog.records)

    path = Path(database_url.removeprefix("sqlite:///"))
    first = await submit("before")
    worker, stop = Worker(runtime), asyncio.Event()
    async with pragmas(runtime.db, "PRAGMA busy_timeout=20"):
        async with write_locked_from_a_thread(path):  # down when the worker starts
            task = asyncio.create_task(worker.run(stop))
            await until_true(lambda: warned("registering worker") >= 2, what="registration retries")
        assert await _ended(runtime, first) == "succeeded"
        async with write_locked_from_a_thread(path):  # down again while the worker idles
            await until_true(
                lambda: warned("claiming: the database is unavailable") >= 2, what="claim retries"
            )
            assert not task.done()
        # the worker's own writes may hold the lock past this test's 20 ms busy timeout on a
        # busy machine: a client retries a refused submit with its idempotency key
        second = await until(lambda: _retried(submit, "after"), what="the submit after it")
        assert await _ended(runtime, second) == "succeeded"
        stop.set()  # before the pool is swapped back: no connection may be checked out then
        await asyncio.wait_for(task, 10)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def _retried(submit: Callable[[str], Awaitable[str]], key: str) -> str | None:
    """The run id, or None while the database refuses the write (try again)."""
    try:
        return await submit(key)
    except DatabaseUnavailable:
        return None
