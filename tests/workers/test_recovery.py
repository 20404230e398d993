"""Workers that die, stall or lose their lease: every run still ends settled exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import select

from tests.support.factories import (
    account_balance,
    customer,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.waiting import until, until_true
from wfrun.clock import utcnow
from wfrun.db.runs import Run, find_run
from wfrun.db.schema import jobs, ledger_entries
from wfrun.domain.money import parse_amount
from wfrun.runtime import Runtime
from wfrun.services import claims, run_outcomes, run_progress, runs
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim
from wfrun.workers.worker import Worker

LAPSED = timedelta(seconds=-1)
"""A lease that has lapsed when it is granted: the claiming worker "dies" at once, without a
sleep guessing when a short lease is over."""


async def _submit(runtime: Runtime, seconds: float) -> tuple[str, str]:
    workflow_id = await publish_package(
        runtime, await operator(runtime), sleepy_package(seconds=seconds)
    )
    alice = await customer(runtime, balance="1")
    principal = Principal(alice.account_id, "key_test", "alice")
    request = runs.RunRequest(
        workflow_id=workflow_id, revision_id=None, inputs={}, idempotency_key="r"
    )
    result = await runs.submit_run(runtime.db, principal, request, runtime.policy)
    return alice.account_id, result.run.id


async def _run_row(runtime: Runtime, run_id: str) -> Run:
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, run_id)
    assert run is not None
    return run


async def _entry_kinds(runtime: Runtime, run_id: str) -> list[str]:
    async with runtime.db.transaction() as conn:
        rows = await conn.execute(
            select(ledger_entries.c.kind).where(ledger_entries.c.run_id == run_id)
        )
        return sorted(r.kind for r in rows)


class WatchedEvent(asyncio.Event):
    """The worker's wake-up event, telling the test when the worker idles waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.waiting.set()
        return await super().wait()


async def _lease_lapsed(runtime: Runtime, run_id: str) -> bool:
    async with runtime.db.transaction() as conn:
        lease_until = (
            await conn.execute(select(jobs.c.lease_until).where(jobs.c.run_id == run_id))
        ).scalar_one()
    return lease_until is not None and lease_until < utcnow()


async def test_stale_attempt_cannot_settle_after_losing_its_lease(runtime):
    account_id, run_id = await _submit(runtime, seconds=0)
    first = await claims.claim_next(runtime.db, worker_id="w1", lease=LAPSED)
    assert isinstance(first, Claim)
    second = await claims.claim_next(runtime.db, worker_id="w2", lease=timedelta(seconds=30))
    assert isinstance(second, Claim)
    assert (first.attempt, second.attempt) == (1, 2)

    assert await run_outcomes.complete(runtime.db, first, outputs={}, execution_ms=500) is False
    with pytest.raises(claims.Fenced):
        await run_progress.record_node(
            runtime.db,
            first,
            event_type="executed",
            node_id="1",
            message="late",
            percent=50,
            snapshot={},
        )
    assert await run_outcomes.complete(runtime.db, second, outputs={}, execution_ms=100) is True
    assert await run_outcomes.complete(runtime.db, second, outputs={}, execution_ms=100) is False

    row = await _run_row(runtime, run_id)
    assert (row.status, row.attempt, row.execution_ms) == ("succeeded", 2, 100)
    assert await _entry_kinds(runtime, run_id) == ["freeze", "settle"]
    assert await account_balance(runtime, account_id) == (
        parse_amount("1") - (row.final_amount or 0),
        0,
    )


async def test_poison_job_is_failed_and_released_after_max_attempts(runtime):
    account_id, run_id = await _submit(runtime, seconds=0)
    for attempt in range(1, runtime.settings.worker.max_attempts + 1):
        # each worker "dies" at once: its lease has lapsed when the next one claims
        claim = await claims.claim_next(runtime.db, worker_id=f"w{attempt}", lease=LAPSED)
        assert isinstance(claim, Claim)
        assert claim.attempt == attempt
    outcome = await claims.claim_next(runtime.db, worker_id="last", lease=LAPSED)
    assert outcome == "settled"
    row = await _run_row(runtime, run_id)
    assert row.status == "failed"
    assert row.error_code == "WORKER_LOST"
    assert row.final_amount == 0
    assert await _entry_kinds(runtime, run_id) == ["freeze", "release"]
    assert await account_balance(runtime, account_id) == (parse_amount("1"), 0)
    async with runtime.db.transaction() as conn:
        status = (await conn.execute(select(jobs.c.status))).scalar_one()
    assert status == "failed"


def _spawn_worker(runtime: Runtime, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WFRUN_DATABASE_URL": runtime.settings.resolved_database_url,
        "WFRUN_DATA_DIR": str(runtime.settings.data_dir),
        "WFRUN_SECRET_KEY": "test-secret",
        "WFRUN_WORKER__LEASE_SECONDS": "1",
        "WFRUN_WORKER__POLL_INTERVAL": "0.05",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "wfrun", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.mark.slow
async def test_worker_killed_mid_run_is_finished_by_another_worker(runtime, tmp_path):
    account_id, run_id = await _submit(runtime, seconds=1.0)
    process = _spawn_worker(runtime, tmp_path / "worker.log")
    try:

        async def sleeping_in_node_2() -> bool:
            row = await _run_row(runtime, run_id)
            snapshot = row.progress_snapshot or {}
            if process.poll() is not None:
                pytest.fail("the worker exited:\n" + (tmp_path / "worker.log").read_text())
            return row.status == "running" and snapshot.get("node_id") == "2"

        await until(sleeping_in_node_2, what="the worker process to run node 2")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert (await _run_row(runtime, run_id)).status == "running"

    worker = Worker(runtime)  # a lease long enough for a busy machine's heartbeats
    await until(lambda: _lease_lapsed(runtime, run_id), what="the killed worker's lease to lapse")
    await worker.run_until_idle()
    row = await _run_row(runtime, run_id)
    assert row.status == "succeeded"
    assert row.attempt == 2
    assert await _entry_kinds(runtime, run_id) == ["freeze", "settle"]
    assert await account_balance(runtime, account_id) == (
        parse_amount("1") - (row.final_amount or 0),
        0,
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgres_notify_wakes_an_idle_worker_without_polling(runtime):
    """PostgreSQL only: SQLite has no NOTIFY (its workers wake in-process or poll)."""
    slow_poll = runtime.settings.worker.model_copy(update={"poll_interval": 60.0})
    wakeup = WatchedEvent()
    worker = Worker(runtime, settings=slow_poll, wakeup=wakeup)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        # the worker found nothing and now waits for a wake-up (or its 60 s poll)
        await until_true(wakeup.waiting.is_set, what="the worker to idle")
        _, run_id = await _submit(runtime, seconds=0)

        async def succeeded() -> bool:
            return (await _run_row(runtime, run_id)).status == "succeeded"

        await until(succeeded, what="the NOTIFY to wake the worker and the run to succeed")
    finally:
        stop.set()
        await task
