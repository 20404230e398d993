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
    order: int = 0  # the job's place in the claim order (its scheduled_at)
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
        self.runs[run.id] = run
        self.available[run.account] -= run.quote

    def next_claim(self) -> RunModel | None:
        """The run whose job the next claim takes (oldest scheduled first), if any."""
        candidates = [r for r in self.runs.values() if r.claimable]
        return min(candidates, key=lambda r: r.order, default=None)

    def end(self, run: RunModel, status: str, bill: money.Bill) -> None:
        run.status, run.job, run.bill = status, "closed", bill
        self.available[run.account] += run.quote - bill.final
