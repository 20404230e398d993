"""The in-memory model the ledger state machine checks wfrun against: accounts' balances,
each run's status, job and attempt, and the claims workers hold — computed from the rules of
README "How it works" and ``tests/support/money.py``, never from wfrun's own code."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.support import money
from wfrun.services.claims import Claim

MAX_ATTEMPTS = 2  # the poison cap (worker.max_attempts), low enough to be reached often
LIVE = ("queued", "running")


@dataclass(frozen=True)
class Prices:
    fixed_fee: int
    price_per_second: int
    estimated_seconds: int
    external_estimate: int = 0

    @property
    def quote(self) -> int:
        return (
            self.fixed_fee
            + self.price_per_second * self.estimated_seconds
            + (self.external_estimate)
        )


@dataclass
class RunModel:
    """One run as the oracle expects it."""

    id: str
    account: str
    prices: Prices
    consent: bool
    status: str = "queued"
    job: str = "todo"  # todo | doing | closed
    attempt: int = 0  # claims so far (the job's attempts; the run's fencing token)
    order: int = 0  # when it was submitted: its place within its round
    round: int = 0  # its fair round (README "The queue"): claims go by (round, order)
    lapsed: bool = False  # its doing job's lease ran out
    retried: bool = False  # a transient failure gave the job back (last_error is set)
    cancel_requested: bool = False
    bill: money.Bill | None = None  # how its freeze resolved, once ended

    @property
    def quote(self) -> int:
        return self.prices.quote

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def claimable(self) -> bool:
        return self.job == "todo" or (self.job == "doing" and self.lapsed)

    def owned_by(self, claim: Claim) -> bool:
        """Whether ``claim`` still owns the run (its writes must go through)."""
        return self.status == "running" and self.attempt == claim.attempt


@dataclass
class Books:
    """Expected balances per account and the runs, with the claim order."""

    available: Counter[str] = field(default_factory=Counter)
    runs: dict[str, RunModel] = field(default_factory=dict)
    _clock: int = 0

    def tick(self) -> int:
        self._clock += 1
        return self._clock

    def frozen(self, account: str) -> int:
        return sum(r.quote for r in self.runs.values() if r.account == account and r.live)

    def submitted(self, run: RunModel) -> None:
        run.order = self.tick()
        run.round = self._round(run.account)
        self.runs[run.id] = run
        self.available[run.account] -= run.quote

    def _round(self, account: str) -> int:
        """Round-robin by account in the one lane these runs share: the round in service (the
        highest of the jobs being worked on, else the lowest waiting, else 0), or the round
        after the account's own last job waiting or in service."""
        doing = [r.round for r in self.runs.values() if r.job == "doing"]
        todo = [r.round for r in self.runs.values() if r.job == "todo"]
        current = max(doing) if doing else min(todo, default=0)
        mine = [r.round for r in self.runs.values() if r.account == account and r.job != "closed"]
        return max(current, max(mine) + 1) if mine else current

    def next_claim(self) -> RunModel | None:
        """The run whose job the next claim takes (by round, then submit order), if any; a
        retried or lapsed job keeps its place."""
        candidates = [r for r in self.runs.values() if r.claimable]
        return min(candidates, key=lambda r: (r.round, r.order), default=None)

    def end(self, run: RunModel, status: str, bill: money.Bill) -> None:
        run.status, run.job, run.bill = status, "closed", bill
        self.available[run.account] += run.quote - bill.final
