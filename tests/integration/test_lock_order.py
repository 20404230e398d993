"""Cancels racing claims and settlements never deadlock, and every cancel answers what really
happened (lock order job → run → freeze → account on every path; CONTRIBUTING.md)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.support.factories import (
    account_balance,
    customer,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.waiting import until
from wfrun.db.runs import find_run
from wfrun.db.schema import jobs
from wfrun.db.schema import runs as runs_table
from wfrun.domain.runs import RunStatus
from wfrun.runtime import Runtime
from wfrun.services import claims, run_outcomes, runs
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim

RUNS = 60
CLAIMERS = 6
LEASE = timedelta(seconds=60)


async def _claimer(rt: Runtime, name: str, done: asyncio.Event) -> int:
    """Claim and settle as fast as possible (a worker whose engine takes no time)."""
    settled = 0
    while not done.is_set():
        claimed = await claims.claim_next(rt.db, worker_id=name, lease=LEASE)
        if claimed == "empty":
            await asyncio.sleep(0)
            continue
        if isinstance(claimed, Claim):
            if claimed.run.cancel_requested_at is not None:
                await run_outcomes.cancel_consumed(rt.db, claimed, execution_ms=0)
            else:
                await run_outcomes.complete(rt.db, claimed, outputs={}, execution_ms=100)
            settled += 1
    return settled


async def _cancel_all(rt: Runtime, principal: Principal, run_ids: list[str]) -> list[str]:
    order = run_ids[:]
    random.Random(7).shuffle(order)
    outcomes: list[str] = []
    for run_id in order:
        before = await runs.cancel_run(rt.db, principal, run_id)
        outcomes.append(before.outcome)
        if before.outcome == "already_finished":
            assert before.run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
        elif before.outcome == "cancelled":
            assert before.run.status is RunStatus.CANCELLED
        elif before.outcome in ("cancel_requested", "already_requested"):
            assert before.run.status is RunStatus.RUNNING
    return outcomes


async def _unfinished(rt: Runtime, run_ids: list[str]) -> int:
    async with rt.db.transaction() as conn:
        found = [await find_run(conn, run_id) for run_id in run_ids]
    return sum(1 for run in found if run is None or not run.terminal_at)


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
async def test_cancels_racing_claims_never_deadlock_and_answer_truthfully(runtime: Runtime):
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    alice = await customer(runtime, balance="100")
    principal = Principal(alice.account_id, "key_test", "alice")
    run_ids = []
    for n in range(RUNS):
        request = runs.RunRequest(workflow_id, None, {}, idempotency_key=f"race-{n}")
        run_ids.append(
            (await runs.submit_run(runtime.db, principal, request, runtime.policy)).run.id
        )

    done = asyncio.Event()
    workers = [asyncio.create_task(_claimer(runtime, f"w{i}", done)) for i in range(CLAIMERS)]
    outcomes = await _cancel_all(runtime, principal, run_ids)

    async def all_finished() -> bool:
        return await _unfinished(runtime, run_ids) == 0

    await until(all_finished, what="the claimers to settle what they hold")
    done.set()
    await asyncio.gather(*workers)  # a deadlock would surface here as an exception

    async with runtime.db.transaction() as conn:
        ended = [await find_run(conn, run_id) for run_id in run_ids]
    statuses = {run.status for run in ended if run is not None}
    assert statuses <= {RunStatus.SUCCEEDED, RunStatus.CANCELLED}
    assert len(outcomes) == RUNS
    assert await account_balance(runtime, alice.account_id) == (
        100_0000_0000 - sum(run.final_amount or 0 for run in ended if run is not None),
        0,
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_ending_statement_waits_for_the_jobs_before_it_locks_the_run(runtime: Runtime):
    """The settlement's one statement takes the run's job locks before the run's row (lock
    order job → run): while another transaction holds the jobs, the waiting ending holds no
    lock on the run — a third transaction can lock it without waiting."""
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    alice = await customer(runtime, balance="10")
    principal = Principal(alice.account_id, "key_test", "alice")
    request = runs.RunRequest(workflow_id, None, {}, idempotency_key="ordered")
    run_id = (await runs.submit_run(runtime.db, principal, request, runtime.policy)).run.id
    claimed = await claims.claim_next(runtime.db, worker_id="w", lease=LEASE)
    assert isinstance(claimed, Claim)

    async with runtime.db.transaction(write=True) as holder:
        await holder.execute(select(jobs.c.id).where(jobs.c.run_id == run_id).with_for_update())
        ending = asyncio.create_task(
            run_outcomes.complete(runtime.db, claimed, outputs={}, execution_ms=100)
        )
        await until(lambda: _waiting_on_a_lock(runtime, "UPDATE runs SET"), what="the ending waits")
        async with runtime.db.transaction(write=True) as third:
            locked = select(runs_table.c.id).where(runs_table.c.id == run_id)
            got = await third.execute(locked.with_for_update(nowait=True))
            assert got.scalars().all() == [run_id]
    assert await ending
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED


async def _waiting_on_a_lock(rt: Runtime, marker: str) -> bool:
    async with rt.db.transaction() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE :marker"
        )
        return bool((await conn.execute(query, {"marker": f"%{marker}%"})).scalar())
