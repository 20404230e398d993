"""A model-based test (reliability.md §7.7): random sequences of top-ups, submits, replays,
cancels, claims, completions, failures and lost leases against the real services and database,
checked after every step against an in-memory oracle and the ledger invariants."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.conftest import make_settings
from tests.support import databases
from tests.support.factories import sleepy_package
from wfrun.db.audit import ledger_problems
from wfrun.domain.failures import Failure, FailureCode
from wfrun.domain.money import parse_amount
from wfrun.errors import InsufficientBalance
from wfrun.runtime import Runtime, build_runtime
from wfrun.services import accounts, catalog, claims, run_outcomes, runs
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim

QUOTE = parse_amount("0.11")  # sleepy_package: 0.01 fixed + 0.01/s × 10 s estimate


class LedgerMachine(RuleBasedStateMachine):
    database_url: str = ""
    data_dir: Path = Path()

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.rt: Runtime = self.run(self._open())
        self.available = 0
        self.runs: dict[str, str] = {}  # run id -> status in the oracle
        self.claims: dict[str, Claim] = {}
        self.keys = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> Runtime:
        rt = await build_runtime(make_settings(self.database_url, self.data_dir))
        await databases.truncate_all(rt.db)  # each example starts from empty books
        return rt

    @initialize()
    def setup(self) -> None:
        async def go() -> None:
            owner = await accounts.create_account(self.rt.db, display_name="op")
            result = await catalog.import_package(
                self.rt.db, owner_id=owner, document=sleepy_package(seconds=0), publish=True
            )
            self.workflow_id = result.workflow_id
            self.account = await accounts.create_account(self.rt.db, display_name="c")
            self.principal = Principal(self.account, "key_x", "c")

        self.run(go())

    def teardown(self) -> None:
        self.run(self.rt.close())
        self.loop.close()

    @rule(cents=st.integers(min_value=1, max_value=40))
    def top_up(self, cents: int) -> None:
        amount = cents * parse_amount("0.01")
        self.run(accounts.top_up(self.rt.db, account_id=self.account, amount=amount))
        self.available += amount

    def _request(self, key: str) -> runs.RunRequest:
        return runs.RunRequest(self.workflow_id, None, {}, idempotency_key=key)

    @rule()
    def submit(self) -> None:
        self.keys += 1
        try:
            result = self.run(
                runs.submit_run(
                    self.rt.db, self.principal, self._request(f"k{self.keys}"), self.rt.policy
                )
            )
        except InsufficientBalance:
            assert self.available < QUOTE
            return
        assert self.available >= QUOTE
        self.available -= QUOTE
        self.runs[result.run.id] = "queued"

    @rule()
    def replay(self) -> None:
        if not self.keys:
            return
        try:
            result = self.run(
                runs.submit_run(
                    self.rt.db, self.principal, self._request(f"k{self.keys}"), self.rt.policy
                )
            )
        except InsufficientBalance:
            return  # the original was refused too, so nothing is recorded under the key
        assert result.replay
        assert result.run.id in self.runs

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        live = [r for r, s in self.runs.items() if s == "queued"]
        if not live:
            return
        run_id = data.draw(st.sampled_from(live))
        outcome = self.run(runs.cancel_run(self.rt.db, self.principal, run_id))
        assert outcome.outcome == "cancelled"
        self.runs[run_id] = "cancelled"
        self.available += QUOTE

    @rule()
    def claim(self) -> None:
        claimed = self.run(
            claims.claim_next(self.rt.db, worker_id="w", lease=timedelta(seconds=60))
        )
        if isinstance(claimed, Claim):
            assert self.runs[claimed.run.id] in ("queued", "running")
            self.runs[claimed.run.id] = "running"
            self.claims[claimed.run.id] = claimed
        else:
            assert claimed == "empty"
            assert "queued" not in self.runs.values()

    @rule(data=st.data(), ms=st.integers(min_value=0, max_value=30_000))
    def complete(self, data: st.DataObject, ms: int) -> None:
        if not self.claims:
            return
        run_id = data.draw(st.sampled_from(sorted(self.claims)))
        claim = self.claims.pop(run_id)
        assert self.run(run_outcomes.complete(self.rt.db, claim, outputs={}, execution_ms=ms))
        final = parse_amount("0.01") + (parse_amount("0.01") * ms * 2 + 1000) // 2000
        self.available += QUOTE - final
        self.runs[run_id] = "succeeded"
        assert not self.run(run_outcomes.complete(self.rt.db, claim, outputs={}, execution_ms=ms))

    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        if not self.claims:
            return
        run_id = data.draw(st.sampled_from(sorted(self.claims)))
        claim = self.claims.pop(run_id)
        failure = Failure(FailureCode.ENGINE_EXECUTION_FAILED, "boom")
        assert self.run(run_outcomes.fail(self.rt.db, claim, failure, execution_ms=5))
        self.available += QUOTE
        self.runs[run_id] = "failed"

    @invariant()
    def books_balance(self) -> None:
        async def check() -> tuple[list[str], Any]:
            async with self.rt.db.transaction() as conn:
                problems = await ledger_problems(conn)
            return problems, await accounts.get_account(self.rt.db, self.account)

        problems, account = self.run(check())
        assert problems == []
        open_runs = sum(1 for s in self.runs.values() if s in ("queued", "running"))
        assert (account.available, account.frozen) == (self.available, open_runs * QUOTE)


@pytest.mark.slow
def test_ledger_state_machine(database_url: str, tmp_path: Path) -> None:
    machine: Any = type(
        "Machine", (LedgerMachine,), {"database_url": database_url, "data_dir": tmp_path / "data"}
    )
    machine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()
