"""Database round trips of the worker's steps (issue 17), counted on both databases through
the calls the worker makes: a claim that starts a run, a progress write, a heartbeat for all
the worker's runs, a settlement, and one whole run drained by a burst-mode worker.

Targets (PostgreSQL): claim + start ≤ 4, and ≤ 4 for a batch of 8 (≤ 0.5 a run: BEGIN, the
lanes with work, the one claim statement, COMMIT), a progress write ≤ 3 (BEGIN, one
statement, COMMIT), a heartbeat ≤ 3 however many runs, a settlement ≤ 4. SQLite has no data-modifying
CTEs and a ``RETURNING`` of the updated table only: its (in-process) counts are pinned a little
higher. The pool's pre-ping is not the worker's (``db/database.py`` drops it on the hot path,
issue 17's submit side) and is left out of the counts here.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.support.factories import customer, drain, operator, publish_package, sleepy_package
from tests.support.statements import PRE_PING_TRIPS, Trips, counting
from tests.support.waiting import until
from wfrun.db.runs import find_run, list_events
from wfrun.domain.money import parse_amount
from wfrun.domain.runs import RunStatus
from wfrun.runtime import Runtime
from wfrun.services import accounts, claims, run_outcomes, runs, spending, worker_registry
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim
from wfrun.workers.progress import ProgressRecorder

LEASE = timedelta(seconds=60)
HOUR = 3600.0

# (PostgreSQL, SQLite) targets
CLAIM_AND_START = {"postgresql": 4, "sqlite": 8}
PROGRESS_WRITE = {"postgresql": 3, "sqlite": 4}
HEARTBEAT = {"postgresql": 3, "sqlite": 5}
BATCH = 8
BATCH_CLAIM = {"postgresql": 4, "sqlite": 8}
"""A claim of up to :data:`BATCH` runs; SQLite claims one run a claim (its one writer)."""
SETTLEMENT = {"postgresql": 1, "sqlite": 11}
"""PostgreSQL: the ending's one statement, without a transaction (issue 11)."""
CAPPED_SETTLEMENT = {"postgresql": 7, "sqlite": 14}
"""A run of a key with a spend limit: its counter is read, locked and moved too."""
WHOLE_RUN = 25
"""A burst-mode worker's whole life around one trivial run on PostgreSQL: registering (3),
a heartbeat (3), the claim that starts it (4), two progress writes (first node, end: 6), the
settlement (1), and two claims that find nothing (8)."""


def trips_of(trips: Trips) -> int:
    """Round trips without the pool's pre-ping (module docstring)."""
    return trips.round_trips - trips.pings * PRE_PING_TRIPS


class Bench:
    """A published trivial built-in package and a customer to submit it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.workflow_id = ""
        self.principal: Principal | None = None
        self.submitted = 0

    async def setup(self) -> Bench:
        self.workflow_id = await publish_package(
            self.rt, await operator(self.rt), sleepy_package(seconds=0)
        )
        alice = await customer(self.rt, balance="10")
        self.principal = Principal(alice.account_id, "key_test", "alice")
        return self

    async def submit(self) -> str:
        assert self.principal is not None
        self.submitted += 1
        request = runs.RunRequest(
            workflow_id=self.workflow_id,
            revision_id=None,
            inputs={},
            idempotency_key=f"k{self.submitted}",
        )
        result = await runs.submit_run(self.rt.db, self.principal, request, self.rt.policy)
        return result.run.id

    async def claim(self) -> Claim:
        claim = await claims.claim_next(self.rt.db, worker_id="w", lease=LEASE)
        assert isinstance(claim, Claim)
        return claim


async def warmed(rt: Runtime) -> Bench:
    """A bench whose statements have been used once (asyncpg prepares on first use)."""
    bench = await Bench(rt).setup()
    await bench.submit()
    await drain(rt)
    return bench


async def test_a_claim_starts_a_run_in_few_round_trips(runtime: Runtime) -> None:
    bench = await warmed(runtime)
    run_id = await bench.submit()
    async with counting(runtime.db) as trips:
        claim = await bench.claim()
    assert (claim.run.id, claim.run.status, claim.attempt) == (run_id, RunStatus.RUNNING, 1)
    assert trips_of(trips) <= CLAIM_AND_START[runtime.db.dialect], trips.explain()
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, run_id)
        events = await list_events(conn, run_id, limit=10)
    assert run is not None
    assert (run.status, run.attempt) == (RunStatus.RUNNING, 1)
    assert [(e.event_type, e.message) for e in events][-1] == ("started", "started (attempt 1)")


async def test_a_batch_claim_starts_many_runs_in_the_round_trips_of_one(runtime: Runtime) -> None:
    bench = await warmed(runtime)
    queued = [await bench.submit() for _ in range(BATCH + 1)]
    async with counting(runtime.db) as trips:
        batch = await claims.claim_batch(runtime.db, worker_id="w", lease=LEASE, limit=BATCH)
    taken = 1 if runtime.db.is_sqlite else BATCH
    assert [c.run.id for c in batch.claims] == queued[:taken]
    assert {(c.run.status, c.attempt) for c in batch.claims} == {(RunStatus.RUNNING, 1)}
    assert trips.transactions == 1, trips.explain()
    assert trips_of(trips) <= BATCH_CLAIM[runtime.db.dialect], trips.explain()
    async with runtime.db.transaction() as conn:
        events = [await list_events(conn, c.run.id, limit=10) for c in batch.claims]
        last = await find_run(conn, queued[-1])
    assert [[(e.event_type, e.message) for e in run][-1] for run in events] == [
        ("started", "started (attempt 1)")
    ] * taken
    assert last is not None
    assert last.status is RunStatus.QUEUED


async def test_a_progress_write_is_one_short_transaction(runtime: Runtime) -> None:
    bench = await warmed(runtime)
    await bench.submit()
    claim = await bench.claim()
    recorder = ProgressRecorder(runtime.db, claim, interval=HOUR)
    await recorder.node_started("1", "EmptyImage", 0, 4)  # warm: written at once
    await recorder.flush()
    await recorder.node_finished("1", "EmptyImage", 0, 4)
    await recorder.node_started("2", "TestSleep", 1, 4)
    async with counting(runtime.db) as trips:
        await recorder.flush()  # both lines in one write
    recorder.close()
    assert trips.transactions == 1, trips.explain()
    assert trips_of(trips) <= PROGRESS_WRITE[runtime.db.dialect], trips.explain()
    async with runtime.db.transaction() as conn:
        events = await list_events(conn, claim.run.id, limit=10)
    lines = [(e.event_type, e.node_id) for e in events if e.node_id is not None]
    assert lines == [("executing", "1"), ("executed", "1"), ("executing", "2")]


async def test_a_heartbeat_keeps_every_lease_in_one_statement(runtime: Runtime) -> None:
    bench = await warmed(runtime)
    for _ in range(3):
        await bench.submit()
    held = [await bench.claim() for _ in range(3)]
    assert bench.principal is not None
    cancelled = await runs.cancel_run(runtime.db, bench.principal, held[1].run.id)
    assert cancelled is not None
    stale = dataclasses.replace(held[2], attempt=held[2].attempt + 1)  # not this worker's
    await worker_registry.register_worker(
        runtime.db, worker_id="w", hostname="h", pid=1, concurrency=4
    )
    owned = [(c.job_id, c.attempt, c.run.id) for c in held[:2]]
    await worker_registry.heartbeat(runtime.db, worker_id="w", owned=owned, lease=LEASE)
    async with counting(runtime.db) as trips:
        lost, cancels = await worker_registry.heartbeat(
            runtime.db, worker_id="w", owned=owned, lease=LEASE
        )
    assert (lost, cancels) == (set(), {held[1].run.id})
    assert trips_of(trips) <= HEARTBEAT[runtime.db.dialect], trips.explain()
    # a lease this worker lost (rare: one more statement) is reported as lost
    owned.append((stale.job_id, stale.attempt, stale.run.id))
    lost, cancels = await worker_registry.heartbeat(
        runtime.db, worker_id="w", owned=owned, lease=LEASE
    )
    assert (lost, cancels) == ({stale.run.id}, {held[1].run.id})


async def test_a_settlement_is_one_transaction_of_few_statements(runtime: Runtime) -> None:
    bench = await warmed(runtime)
    await bench.submit()
    claim = await bench.claim()
    async with counting(runtime.db) as trips:
        done = await run_outcomes.complete(runtime.db, claim, outputs={}, execution_ms=1500)
    assert done
    assert trips.transactions == (0 if runtime.db.dialect == "postgresql" else 1), trips.explain()
    assert trips_of(trips) <= SETTLEMENT[runtime.db.dialect], trips.explain()
    async with runtime.db.transaction() as conn:
        run = await find_run(conn, claim.run.id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    # the package: a fixed fee of 0.01 CNY and 0.01 CNY a second → 1.5 s cost 0.025 CNY
    assert (run.final_amount, run.execution_ms) == (2_500_000, 1500)


async def test_a_settlement_of_a_key_with_a_spend_limit_is_one_transaction(
    runtime: Runtime,
) -> None:
    """The ending reads and locks the key's counter, so it is not one statement alone."""
    bench = await warmed(runtime)
    assert bench.principal is not None
    account_id = bench.principal.account_id
    key_id = (await accounts.list_keys(runtime.db, account_id))[0].id
    await spending.set_key_limit(runtime.db, key_id, parse_amount("5"), "total")
    bench.principal = Principal(account_id, key_id, "alice", parse_amount("5"), "total")
    await bench.submit()
    claim = await bench.claim()
    async with counting(runtime.db) as trips:
        assert await run_outcomes.complete(runtime.db, claim, outputs={}, execution_ms=1500)
    assert trips.transactions == 1, trips.explain()
    assert trips_of(trips) <= CAPPED_SETTLEMENT[runtime.db.dialect], trips.explain()
    view = (await spending.key_limits(runtime.db, [key_id]))[key_id]
    assert (view.frozen, view.spent) == (0, 2_500_000)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_whole_trivial_run_through_the_worker(runtime: Runtime) -> None:
    bench = await warmed(runtime)
    run_id = await bench.submit()
    async with counting(runtime.db) as trips:
        await drain(runtime)

    async def ended() -> bool:
        async with runtime.db.transaction() as conn:
            run = await find_run(conn, run_id)
        return run is not None and run.status is RunStatus.SUCCEEDED

    await until(ended, what="the run drained")
    assert trips_of(trips) <= WHOLE_RUN, trips.explain()
