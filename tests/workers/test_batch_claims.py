"""Batch claims (issue 17): one claim takes up to ``limit`` jobs in the one queue order,
fairness across accounts kept, an account's running-run cap counted within the batch, and
two batches at once never take one job twice nor an account's last place twice. PostgreSQL
claims a batch in one statement; SQLite claims one job a claim (its one writer), so there
the same calls take one job each time.

A worker with ``concurrency`` C and at least C runs waiting starts C runs with its first
claim: the built-in engine is held (each run's ``execute`` waits until the test lets it go),
so the test, not a clock, decides when runs end."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.support import api
from tests.support.factories import (
    Customer,
    account_balance,
    customer,
    drain,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.money import cny
from tests.support.pg_relay import Relay
from tests.support.statements import counting
from tests.support.waiting import until, until_true
from tests.workers.test_running_cap import _done_or_waiting
from wfrun.clock import utcnow
from wfrun.db.database import Database
from wfrun.db.schema import jobs, runs
from wfrun.engines.base import Engine, NodeResult, ProgressSink, RunSpec
from wfrun.queue import quotas
from wfrun.runtime import Runtime
from wfrun.services import claims, limits
from wfrun.services.claims import Batch
from wfrun.workers.worker import Worker

LEASE = timedelta(seconds=60)


def batched(rt: Runtime, n: int) -> int:
    """How many jobs a batch of ``n`` takes on this database (SQLite: one a claim)."""
    return 1 if rt.db.is_sqlite else n


async def _workflow(rt: Runtime) -> str:
    return await publish_package(rt, await operator(rt), sleepy_package(seconds=0))


async def _submit(http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str) -> str:
    run_id: str = (await api.submit(http, who, workflow_id, key))["run_order_id"]
    return run_id


async def _claim(rt: Runtime, limit: int, running_cap: int | None = None) -> Batch:
    return await claims.claim_batch(
        rt.db, worker_id="w", lease=LEASE, running_cap=running_cap, limit=limit
    )


async def _position(http: httpx.AsyncClient, who: Customer, run_id: str) -> int:
    view = await api.execution(http, who, run_id)
    assert view["status"] == "queued", view
    return int(view["queue_info"]["position"])


async def test_a_batch_takes_the_queue_head_in_fair_order(runtime, http):
    workflow_id = await _workflow(runtime)
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    a1, a2, a3 = [await _submit(http, alice, workflow_id, f"a{i}") for i in (1, 2, 3)]
    b1 = await _submit(http, bob, workflow_id, "b1")  # joins alice's first round
    last = await _submit(http, alice, workflow_id, "a4")
    assert await _position(http, alice, last) == 5
    batch = await _claim(runtime, limit=3)
    fair = [a1, b1, a2, a3][: batched(runtime, 3)]
    assert [c.run.id for c in batch.claims] == fair
    assert [(c.run.status, c.attempt) for c in batch.claims] == [("running", 1)] * len(fair)
    assert batch.settled == 0
    assert await _position(http, alice, last) == 5 - len(fair)  # one place per started run
    for ran in range(len(fair), 4):  # the rest, one claim each, in the same order
        assert [c.run.id for c in (await _claim(runtime, limit=1)).claims] == [
            [a1, b1, a2, a3][ran]
        ]
        assert await _position(http, alice, last) == 4 - ran
    assert await _position(http, alice, last) == 1


@pytest.mark.parametrize("how", ["default", "override"])
async def test_a_capped_account_takes_only_the_places_it_has_left(runtime, http, how):
    workflow_id = await _workflow(runtime)
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    cap = None
    if how == "default":
        cap = 2
    else:
        changes = {"max_running_runs": 2}
        await limits.set_overrides(runtime.db, runtime.settings.limits, alice.account_id, changes)
    first = await _submit(http, alice, workflow_id, "a1")
    assert [c.run.id for c in (await _claim(runtime, 1, cap)).claims] == [first]
    a2, a3, a4 = [await _submit(http, alice, workflow_id, f"a{i}") for i in (2, 3, 4)]
    b1 = await _submit(http, bob, workflow_id, "b1")
    batch = await _claim(runtime, limit=5, running_cap=cap)
    # bob's run joined the round in service; one place left for alice: a2 takes it, a3 and a4
    # wait (the batch passes them by)
    assert [c.run.id for c in batch.claims] == [b1, a2][: batched(runtime, 2)]
    assert not batch.exhausted  # short, but the cap trimmed it: claim again, not wait
    if runtime.db.is_sqlite:
        assert [c.run.id for c in (await _claim(runtime, 5, cap)).claims] == [a2]
    last = await _claim(runtime, limit=5, running_cap=cap)
    assert (last.claims, last.exhausted) == ([], True)  # alice at her cap: nothing claimable
    async with runtime.db.transaction() as conn:
        assert await quotas.running_count(conn, alice.account_id) == 2
        assert await quotas.waiting_count(conn, alice.account_id) == 2
    assert [await _position(http, alice, r) for r in (a3, a4)] == [1, 2]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_batches_at_once_do_not_both_take_an_accounts_last_place(
    runtime, http, database_url
):
    """Worker A's batch of two (alice's first run and bob's) waits on its COMMIT when worker
    B claims: B passes A's jobs by and its snapshot sees alice with no run, but B must not
    start her second past her cap of 1 (the advisory recount waits for A's commit)."""
    workflow_id = await _workflow(runtime)
    alice, bob = await customer(runtime, name="alice"), await customer(runtime, name="bob")
    a1, a2 = [await _submit(http, alice, workflow_id, f"a{i}") for i in (1, 2)]
    b1 = await _submit(http, bob, workflow_id, "b1")
    relay = Relay(database_url)
    db_a = Database(await relay.start())
    relay.hold = lambda sent: b"COMMIT" in sent
    try:
        batch_a, batch_b = await _second_meets_first(runtime, relay, _batch(db_a, "a", 2))
    finally:
        await db_a.dispose()
        await relay.stop()
    assert [c.run.id for c in batch_a.claims] == [a1, b1]
    assert batch_b == Batch([], 0, exhausted=False)  # rolled back: a2 waits for her place
    async with runtime.db.transaction() as conn:
        assert await quotas.running_count(conn, alice.account_id) == 1
    assert await _position(http, alice, a2) == 1


def _batch(db: Database, worker_id: str, limit: int) -> Coroutine[None, None, Batch]:
    return claims.claim_batch(db, worker_id=worker_id, lease=LEASE, running_cap=1, limit=limit)


async def _second_meets_first(
    rt: Runtime, relay: Relay, first: Coroutine[None, None, Batch]
) -> tuple[Batch, Batch]:
    """``first`` (through ``relay``, which holds its COMMIT) and then a batch of three of the
    test's own database, started while the first waits; both batches once the first commits."""
    held = asyncio.create_task(first)
    await until_true(lambda: relay.held, what="worker A's batch to wait on its COMMIT")
    second = asyncio.create_task(_batch(rt.db, "b", 3))
    await until(lambda: _done_or_waiting(second, rt), what="worker B's batch")
    relay.release()
    return await held, await second


class HeldEngine:
    """The built-in engine behind a gate: each run's ``execute`` counts itself in, waits for
    :attr:`go`, then runs the real graph."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.entered = 0
        self.go = asyncio.Event()

    async def execute(
        self, spec: RunSpec, sink: ProgressSink, interrupt: threading.Event
    ) -> dict[str, NodeResult]:
        self.entered += 1
        await self.go.wait()
        return await self.inner.execute(spec, sink, interrupt)


async def _started_together(rt: Runtime) -> list[int]:
    """The running runs counted by start time (one claim statement, one start time)."""
    async with rt.db.transaction() as conn:
        query = select(func.count()).where(runs.c.status == "running")
        return sorted((await conn.execute(query.group_by(runs.c.started_at))).scalars())


async def test_a_worker_fills_every_free_slot_with_one_claim(runtime, http):
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, name="alice", balance="100")
    queued = [await _submit(http, alice, workflow_id, f"r{i}") for i in range(7)]
    settings = runtime.settings.worker.model_copy(update={"concurrency": 5})
    worker = Worker(runtime, settings=settings)
    engine = HeldEngine(worker.deps.engines["local"])
    worker.deps = replace(worker.deps, engines={**worker.deps.engines, "local": engine})
    async with api.running_worker(runtime, worker):
        await until_true(lambda: engine.entered == 5, what="five runs in the engine")
        assert len(worker._active) == 5
        # PostgreSQL: one claim started all five (one statement, one start time)
        together = [5] if batched(runtime, 5) == 5 else [1] * 5
        assert await _started_together(runtime) == together
        assert [await _position(http, alice, r) for r in queued[5:]] == [1, 2]
        engine.go.set()
        ended = [await api.wait_status(http, alice, r) for r in queued]
    assert [v["status"] for v in ended] == ["succeeded"] * 7
    assert engine.entered == 7


async def test_a_claim_that_took_every_due_job_waits_for_a_wake_up(runtime, http, monkeypatch):
    """A claim that found fewer due jobs than free slots took the whole queue: the worker
    waits for a submit or a freed slot instead of claiming again at once (which would find
    nothing and compete with the run it just started). Its poll interval is an hour here, so
    every claim below is one a wake-up asked for: PostgreSQL's NOTIFY of a new job, or on
    SQLite the API's in-process wake-up. SQLite claims one job a transaction, so it cannot
    know it took the last one: it looks once more."""
    taken: list[int] = []
    claim_batch = claims.claim_batch

    async def counted(*args: object, **kwargs: object) -> Batch:
        batch = await claim_batch(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(len(batch.claims))
        return batch

    monkeypatch.setattr(claims, "claim_batch", counted)
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, name="alice", balance="100")
    settings = runtime.settings.worker.model_copy(update={"concurrency": 4, "poll_interval": 3600})
    wakeup = runtime.wakeup if runtime.db.is_sqlite else None  # else NOTIFY alone
    worker = Worker(runtime, settings=settings, wakeup=wakeup)
    engine = HeldEngine(worker.deps.engines["local"])
    worker.deps = replace(worker.deps, engines={**worker.deps.engines, "local": engine})
    async with api.running_worker(runtime, worker):
        await until_true(lambda: taken == [0], what="the first look at the empty queue")
        # after each claim that took a run: SQLite one more look that finds nothing, else none
        after = [1, 0] if runtime.db.is_sqlite else [1]
        first = await _submit(http, alice, workflow_id, "first")
        await until_true(lambda: taken == [0, *after], what="the first run's claim (and look)")
        await until_true(lambda: engine.entered == 1, what="the first run in the engine")
        second = await _submit(http, alice, workflow_id, "second")
        await until_true(lambda: engine.entered == 2, what="the second run in the engine")
        await until_true(lambda: taken[: 1 + 2 * len(after)] == [0, *after, *after], what="claims")
        assert taken == [0, *after, *after]  # no claim between the two submits' wake-ups
        engine.go.set()
        ended = [await api.wait_status(http, alice, r) for r in (first, second)]
    assert [v["status"] for v in ended] == ["succeeded"] * 2


async def test_a_batch_ends_each_run_in_a_transaction_of_its_own(runtime, http):
    """Runs a batch claims only to end (here: past their queue deadline, interleaved between
    two accounts as the fair queue orders them) are ended one a transaction: an ending locks a
    key's counter and an account, so two endings in one transaction would take those locks
    in queue order against another batch's (a deadlock on PostgreSQL). Each is released whole,
    once."""
    workflow_id = await _workflow(runtime)
    alice = await customer(runtime, name="alice", balance="10")
    bob = await customer(runtime, name="bob", balance="10")
    owners = {
        await _submit(http, who, workflow_id, f"{who.account_id}-{i}"): who
        for i in (0, 1)
        for who in (alice, bob)
    }
    async with runtime.db.transaction(write=True) as conn:
        past = utcnow() - timedelta(seconds=1)
        await conn.execute(update(jobs).where(jobs.c.run_id.in_(owners)).values(start_by=past))
    async with counting(runtime.db) as trips:
        batch = await _claim(runtime, limit=4)
    assert (batch.claims, batch.settled) == ([], batched(runtime, 4))
    assert trips.transactions == batched(runtime, 4), trips.explain()  # one ending each
    await drain(runtime)  # SQLite: the rest, one claim each
    for run_id, who in owners.items():
        view = await api.info(http, who, run_id)
        assert (view["run_status"], view["error_code"]) == ("failed", "QUEUE_TIMEOUT")
        assert view["released_amount"] == view["quote_amount"]
    for who in (alice, bob):
        assert await account_balance(runtime, who.account_id) == (cny("10"), 0)
