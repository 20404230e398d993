"""Every way a run ends goes through ``run_endings.end_run``: each ending below moves the run,
resolves its freeze to the exact amount, and writes exactly one outbox event per state
change, in the same transaction as the change (a rollback leaves none)."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.support.factories import (
    account_balance,
    customer,
    operator,
    publish_package,
    sleepy_package,
)
from wfrun.clock import utcnow
from wfrun.db import outbox
from wfrun.db.runs import Run, find_run
from wfrun.db.schema import freezes
from wfrun.domain.failures import Failure, FailureCode
from wfrun.domain.money import parse_amount
from wfrun.domain.pricing import release
from wfrun.domain.runs import RunStatus
from wfrun.runtime import Runtime
from wfrun.services import claims, run_outcomes, run_progress, runs
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim
from wfrun.services.run_endings import Ending, end_run

QUOTE = parse_amount("0.11")  # fixed fee 0.01 + 0.01/s × 10 estimated seconds
START = parse_amount("1")
QUEUED = ("run.queued", None, "queued")
STARTED = ("run.started", "queued", "running")
LEASE = timedelta(seconds=60)


async def _submit(rt: Runtime, key: str = "k") -> tuple[Principal, Run]:
    workflow_id = await publish_package(rt, await operator(rt), sleepy_package())
    alice = await customer(rt, balance="1")
    principal = Principal(alice.account_id, "key_test", "alice")
    request = runs.RunRequest(workflow_id, None, {}, idempotency_key=key)
    return principal, (await runs.submit_run(rt.db, principal, request, rt.policy)).run


async def _claim(rt: Runtime, lease: timedelta = LEASE) -> Claim:
    claimed = await claims.claim_next(rt.db, worker_id="w", lease=lease)
    assert isinstance(claimed, Claim)
    return claimed


async def _changes(rt: Runtime, run_id: str) -> list[tuple[str, str | None, str]]:
    async with rt.db.transaction() as conn:
        events = await outbox.for_run(conn, run_id)
    return [(e.event_type, e.previous_status, e.status) for e in events]


async def _run(rt: Runtime, run_id: str) -> Run:
    async with rt.db.transaction() as conn:
        run = await find_run(conn, run_id)
    assert run is not None
    return run


async def test_success_settles_by_time_used_and_publishes_each_change(runtime):
    principal, run = await _submit(runtime)
    assert await _changes(runtime, run.id) == [QUEUED]
    claim = await _claim(runtime)
    assert await _changes(runtime, run.id) == [QUEUED, STARTED]

    assert await run_outcomes.complete(runtime.db, claim, outputs={}, execution_ms=1500)

    ended = await _run(runtime, run.id)
    charged = parse_amount("0.025")  # 0.01 fee + 0.01/s × 1.5 s
    assert (ended.status, ended.final_amount, ended.released_amount) == (
        RunStatus.SUCCEEDED,
        charged,
        QUOTE - charged,
    )
    assert await account_balance(runtime, principal.account_id) == (START - charged, 0)
    assert await _changes(runtime, run.id) == [
        QUEUED,
        STARTED,
        ("run.succeeded", "running", "succeeded"),
    ]


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (FailureCode.ENGINE_EXECUTION_FAILED, "internal"),
        (FailureCode.ENGINE_TIMEOUT, "timeout"),
        (FailureCode.PROVIDER_REJECTED, "invalid_input"),
    ],
)
async def test_failure_and_time_limit_release_everything(runtime, code, category):
    principal, run = await _submit(runtime)
    claim = await _claim(runtime)

    failure = Failure(code, "precise detail", node_id="2")
    assert await run_outcomes.fail(runtime.db, claim, failure, execution_ms=700)

    ended = await _run(runtime, run.id)
    assert (ended.status, ended.error_code, ended.error_category, ended.error_detail) == (
        RunStatus.FAILED,
        code.name,
        category,
        "precise detail",
    )
    assert (ended.final_amount, ended.released_amount) == (0, QUOTE)
    assert await account_balance(runtime, principal.account_id) == (START, 0)
    assert await _changes(runtime, run.id) == [QUEUED, STARTED, ("run.failed", "running", "failed")]


async def test_cancel_while_queued_releases_the_whole_freeze(runtime):
    principal, run = await _submit(runtime)

    result = await runs.cancel_run(runtime.db, principal, run.id)

    assert result.outcome == "cancelled"
    assert (result.run.status, result.run.released_amount) == (RunStatus.CANCELLED, QUOTE)
    assert await account_balance(runtime, principal.account_id) == (START, 0)
    assert await _changes(runtime, run.id) == [QUEUED, ("run.cancelled", "queued", "cancelled")]
    assert await claims.claim_next(runtime.db, worker_id="w", lease=LEASE) == "empty"


async def test_cancel_while_running_charges_the_seconds_used(runtime):
    principal, run = await _submit(runtime)
    claim = await _claim(runtime)

    requested = await runs.cancel_run(runtime.db, principal, run.id)
    assert requested.outcome == "cancel_requested"
    again = await runs.cancel_run(runtime.db, principal, run.id)
    assert again.outcome == "already_requested"
    assert await _changes(runtime, run.id) == [QUEUED, STARTED]  # a request is no change
    assert await run_outcomes.cancel_consumed(runtime.db, claim, execution_ms=2000)

    charged = parse_amount("0.02")  # 2 s × 0.01/s, no fixed fee
    ended = await _run(runtime, run.id)
    assert (ended.status, ended.error_code, ended.final_amount) == (
        RunStatus.CANCELLED,
        "USER_CANCELLED",
        charged,
    )
    assert await account_balance(runtime, principal.account_id) == (START - charged, 0)
    assert await _changes(runtime, run.id) == [
        QUEUED,
        STARTED,
        ("run.cancelled", "running", "cancelled"),
    ]
    finished = await runs.cancel_run(runtime.db, principal, run.id)
    assert finished.outcome == "already_cancelled"


async def test_cancel_while_waiting_for_a_retry_ends_at_the_next_claim(runtime):
    principal, run = await _submit(runtime)
    claim = await _claim(runtime)
    assert await run_progress.retry_later(
        runtime.db, claim, delay=timedelta(0), error="instance restarting"
    )
    assert (await runs.cancel_run(runtime.db, principal, run.id)).outcome == "cancel_requested"

    assert await claims.claim_next(runtime.db, worker_id="w2", lease=LEASE) == "settled"

    ended = await _run(runtime, run.id)
    assert (ended.status, ended.final_amount, ended.released_amount) == (
        RunStatus.CANCELLED,
        0,
        QUOTE,
    )
    assert await account_balance(runtime, principal.account_id) == (START, 0)
    assert await _changes(runtime, run.id) == [
        QUEUED,
        STARTED,
        ("run.cancelled", "running", "cancelled"),
    ]


async def test_a_run_out_of_attempts_fails_once(runtime):
    principal, run = await _submit(runtime)
    for _ in range(runtime.policy.max_attempts):
        await _claim(runtime, lease=timedelta(0))  # each worker "dies" at once

    assert await claims.claim_next(runtime.db, worker_id="w", lease=LEASE) == "settled"

    ended = await _run(runtime, run.id)
    assert (ended.status, ended.error_code, ended.released_amount) == (
        RunStatus.FAILED,
        "WORKER_LOST",
        QUOTE,
    )
    assert await account_balance(runtime, principal.account_id) == (START, 0)
    assert await _changes(runtime, run.id) == [QUEUED, STARTED, ("run.failed", "running", "failed")]


async def test_a_stale_attempt_ends_nothing(runtime):
    _, run = await _submit(runtime)
    first = await _claim(runtime, lease=timedelta(0))
    second = await _claim(runtime)

    assert not await run_outcomes.complete(runtime.db, first, outputs={}, execution_ms=1)
    assert await run_outcomes.complete(runtime.db, second, outputs={}, execution_ms=1)
    assert await _changes(runtime, run.id) == [
        QUEUED,
        STARTED,
        ("run.succeeded", "running", "succeeded"),
    ]


async def test_a_replayed_submit_publishes_nothing(runtime):
    principal, run = await _submit(runtime, key="same")
    request = runs.RunRequest(run.workflow_id, None, {}, idempotency_key="same")
    replay = await runs.submit_run(runtime.db, principal, request, runtime.policy)
    assert (replay.replay, replay.run.id) == (True, run.id)
    assert await _changes(runtime, run.id) == [QUEUED]


class _Abort(Exception):
    pass


async def test_an_ending_rolled_back_leaves_no_event_and_no_money_moved(runtime):
    principal, run = await _submit(runtime)
    ending = Ending(RunStatus.CANCELLED, release(run.quote_amount), "cancelled")

    async def end_then_abort() -> None:
        async with runtime.db.transaction(write=True) as conn:
            assert await end_run(conn, run, ending, now=utcnow()) is not None
            assert len(await outbox.for_run(conn, run.id)) == 2  # visible inside the txn
            raise _Abort

    with pytest.raises(_Abort):
        await end_then_abort()

    assert (await _run(runtime, run.id)).status is RunStatus.QUEUED
    assert await _changes(runtime, run.id) == [QUEUED]
    assert await account_balance(runtime, principal.account_id) == (START - QUOTE, QUOTE)
    assert (await runs.cancel_run(runtime.db, principal, run.id)).outcome == "cancelled"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_ending_whose_freeze_is_not_the_planned_one_writes_nothing(runtime):
    """The one statement (no transaction around it) refuses whole when the run's open freeze
    is not the amount it settles: nothing moves, not even the run."""
    principal, run = await _submit(runtime)
    claim = await _claim(runtime)
    await _set_freeze(runtime, run.id, QUOTE + 1)

    with pytest.raises(AssertionError, match="no open freeze of 11000000 was found"):
        await run_outcomes.complete(runtime.db, claim, outputs={}, execution_ms=1500)

    assert (await _run(runtime, run.id)).status is RunStatus.RUNNING
    assert await _changes(runtime, run.id) == [QUEUED, STARTED]
    assert await account_balance(runtime, principal.account_id) == (START - QUOTE, QUOTE)
    async with runtime.db.transaction() as conn:
        frozen = await conn.execute(select(freezes.c.status).where(freezes.c.run_id == run.id))
        assert frozen.scalars().all() == ["frozen"]
    await _set_freeze(runtime, run.id, QUOTE)  # as it was: now it ends (and the books balance)
    assert await run_outcomes.complete(runtime.db, claim, outputs={}, execution_ms=1500)
    assert await account_balance(runtime, principal.account_id) == (
        START - parse_amount("0.025"),
        0,
    )


async def _set_freeze(rt: Runtime, run_id: str, amount: int) -> None:
    async with rt.db.transaction(write=True) as conn:
        await conn.execute(update(freezes).where(freezes.c.run_id == run_id).values(amount=amount))


async def test_amounts_beyond_32_bits_settle_and_release_exactly(runtime):
    """2**31 minor units is 21.47 CNY: a quote of 30.01 CNY (0.01 + 3/s × 10 estimated
    seconds) settles by the 1.5 s it used, and another's is released whole."""
    package = sleepy_package(price_per_second="3")
    workflow_id = await publish_package(runtime, await operator(runtime), package)
    bob = await customer(runtime, balance="100")
    principal = Principal(bob.account_id, "key_test", "bob")
    quote = parse_amount("30.01")
    submitted = []
    for key in ("big-1", "big-2"):
        request = runs.RunRequest(workflow_id, None, {}, idempotency_key=key)
        submitted.append(
            (await runs.submit_run(runtime.db, principal, request, runtime.policy)).run
        )
    assert quote > 2**31
    assert [run.quote_amount for run in submitted] == [quote, quote]
    claim = await _claim(runtime)
    assert await run_outcomes.complete(runtime.db, claim, outputs={}, execution_ms=1500)
    queued = next(run for run in submitted if run.id != claim.run.id)
    assert (await runs.cancel_run(runtime.db, principal, queued.id)).outcome == "cancelled"

    charged = parse_amount("4.51")  # 0.01 + 3/s × 1.5 s
    assert (await _run(runtime, claim.run.id)).final_amount == charged
    assert (await _run(runtime, queued.id)).released_amount == quote
    assert await account_balance(runtime, bob.account_id) == (parse_amount("100") - charged, 0)


SRC = Path(__file__).parents[2] / "src" / "wfrun"
ONLY_IN = {
    "resolve_freeze": {"services/run_endings.py"},
    "close_for_run": {"services/run_endings.py"},
    "publish_change": {"services/run_endings.py", "services/run_starts.py"},
    "append_change": {"services/run_changes.py"},
    "move_status": {"services/run_endings.py", "services/run_starts.py"},
    "close_freeze": {"services/billing.py"},
}


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_only_end_run_resolves_freezes_and_closes_jobs():
    """The structural half: nothing but ``end_run`` resolves a freeze, closes a run's jobs or
    moves a run to an end (the claim moves it to running), and only the three
    status-changing places publish changes."""
    found: dict[str, set[str]] = {name: set() for name in ONLY_IN}
    for path in SRC.rglob("*.py"):
        calls = _calls(path)
        for name in ONLY_IN:
            if name in calls:
                found[name].add(str(path.relative_to(SRC)))
    assert found == ONLY_IN
