"""What the operator does to customers' runs, balances and workflows (the CLI today, the web
console later). Each public function is one transaction; amounts are integer minor units.

Refunds and adjustments are compensating ledger entries with a memo: history is never edited.

- :func:`refund_run` gives back part or all of what an ended run was charged (its
  ``final_amount``), revenue → available, at most the final amount minus earlier refunds.
  It is idempotent per ``(run, memo)``: repeating a refund with the same memo (and the same
  amount, or none) returns the first one (``replay=True``) instead of paying twice; the same
  memo with another amount is refused (use another memo for a second refund).
- :func:`adjust_balance` credits (``amount`` > 0) or debits (< 0) available, against the
  ``adjustment`` bucket; a debit may not take available below zero unless ``allow_negative``.
  Each call posts once, unless it names an idempotency key already used (a form posted
  twice): then it returns the first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from wfrun import ids
from wfrun.clock import utcnow
from wfrun.db import accounts as accounts_db
from wfrun.db import ledger_requests as ledger_requests_db
from wfrun.db import operator as operator_db
from wfrun.db import runs as runs_db
from wfrun.db.accounts import Account
from wfrun.db.database import Connection, Database
from wfrun.db.ledger_requests import LedgerRequest
from wfrun.db.operator import RunFilter, RunRefund
from wfrun.db.runs import Run, RunEvent
from wfrun.db.workflows import Workflow
from wfrun.domain import ledger
from wfrun.domain.money import MAX_MINOR, format_amount
from wfrun.domain.runs import RunStatus
from wfrun.errors import (
    IdempotencyMismatch,
    InsufficientBalance,
    InvalidParameter,
    RunNotFound,
    WorkflowNotFound,
)
from wfrun.services import spending
from wfrun.services.accounts import Principal

if TYPE_CHECKING:
    from wfrun.services.runs import CancelResult

LOG_TAIL = 20
"""Log lines :func:`describe_run` shows."""


@dataclass(frozen=True)
class Refund:
    """A refund of a run, with the run's refund state and the account's balance after it."""

    id: str
    run_id: str
    account_id: str
    amount: int
    memo: str
    entry_id: str
    created_at: datetime
    charged: int
    """The run's final amount."""
    refunded: int
    """Everything refunded of the run so far, this refund included."""
    available: int
    """The account's available balance afterwards."""
    replay: bool
    """True when an earlier refund with this memo was returned (nothing was posted)."""


@dataclass(frozen=True)
class Adjustment:
    """A balance correction as posted."""

    entry_id: str
    account_id: str
    amount: int
    """Signed: a credit is positive, a debit negative."""
    memo: str
    available: int
    """The account's available balance afterwards."""
    created_at: datetime


@dataclass(frozen=True)
class RunDetail:
    """A run as the operator inspects it: the run, its last log lines and its refunds."""

    run: Run
    events: list[RunEvent]
    refunds: list[RunRefund]


_ENDED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def _memo(memo: str) -> str:
    memo = memo.strip()
    if not memo:
        raise InvalidParameter("a memo is required: say why (it stays in the ledger)")
    if len(memo) > 500:
        raise InvalidParameter(f"the memo is {len(memo)} characters long; at most 500")
    return memo


async def refund_run(db: Database, *, run_order_id: str, amount: int | None, memo: str) -> Refund:
    """Refund ``amount`` (None: all that is left) of what the run was charged.

    Raises:
        RunNotFound: no such run.
        InvalidParameter: a bad amount or memo, a run not ended, charged nothing or refunded
            in full already, or more than is left to refund.
        IdempotencyMismatch: this memo refunded the run another amount before.
    """
    memo = _memo(memo)
    if amount is not None and amount <= 0:
        raise InvalidParameter(f"a refund must be positive, got {format_amount(amount)}")
    async with db.transaction(write=True) as conn:
        # an ended run: nothing that locks a key counter or an account waits for it (endings
        # lock live runs; the output sweep one run a statement), so it may come first: run →
        # key counter → account (CONTRIBUTING.md)
        run = await operator_db.lock_run(conn, run_order_id)
        if run is None:
            raise RunNotFound(f"run {run_order_id} does not exist")
        charged = _charged(run)
        earlier = await operator_db.refunds_of_run(conn, run.id)
        refunded = sum(r.amount for r in earlier)
        same = next((r for r in earlier if r.memo == memo), None)
        if same is not None:
            return await _replay(conn, same, amount, charged=charged, refunded=refunded)
        left = charged - refunded
        amount = left if amount is None else amount
        if left == 0 or amount > left:
            raise InvalidParameter(_too_much(run.id, amount, charged, refunded))
        return await _post_refund(conn, run, amount, memo, charged=charged, refunded=refunded)


def _with_room(account: Account, amount: int) -> Account:
    """``account``, unless crediting ``amount`` would overflow the database's integer."""
    if account.available + amount > MAX_MINOR:
        limit = format_amount(MAX_MINOR)
        raise InvalidParameter(f"account {account.id} would hold more than {limit}")
    return account


def _charged(run: Run) -> int:
    if run.status not in _ENDED:
        raise InvalidParameter(f"run {run.id} is {run.status}; refund it once it has ended")
    if not run.final_amount:
        raise InvalidParameter(f"run {run.id} charged nothing; there is nothing to refund")
    return run.final_amount


def _too_much(run_id: str, amount: int, charged: int, refunded: int) -> str:
    if charged == refunded:
        return f"run {run_id} was refunded in full already ({format_amount(charged)} CNY)"
    return (
        f"a refund of {format_amount(amount)} CNY exceeds what is left of run {run_id}: "
        f"charged {format_amount(charged)}, refunded {format_amount(refunded)}, "
        f"at most {format_amount(charged - refunded)} more"
    )


async def _replay(
    conn: Connection, same: RunRefund, amount: int | None, *, charged: int, refunded: int
) -> Refund:
    if amount is not None and amount != same.amount:
        raise IdempotencyMismatch(
            f"run {same.run_id} was refunded {format_amount(same.amount)} CNY with memo "
            f"{same.memo!r} already; a different refund needs a different memo"
        )
    account = await accounts_db.get_account(conn, same.account_id)
    return _refund(same, charged, refunded, account.available, replay=True)


async def _post_refund(
    conn: Connection, run: Run, amount: int, memo: str, *, charged: int, refunded: int
) -> Refund:
    account = _with_room(await accounts_db.get_account(conn, run.account_id), amount)
    await spending.count_refund(conn, run, amount)
    now = utcnow()
    postings = ledger.refund(amount)
    entry_id = await accounts_db.record_entry(
        conn,
        kind=ledger.EntryKind.REFUND,
        account_id=run.account_id,
        postings=postings,
        now=now,
        memo=memo,
    )
    row = RunRefund(ids.new_refund_id(), run.id, run.account_id, entry_id, amount, memo, now)
    await operator_db.insert_refund(conn, asdict(row))
    await accounts_db.apply_balance(conn, run.account_id, postings)
    return _refund(row, charged, refunded + amount, account.available + amount, replay=False)


def _refund(row: RunRefund, charged: int, refunded: int, available: int, *, replay: bool) -> Refund:
    return Refund(
        id=row.id,
        run_id=row.run_id,
        account_id=row.account_id,
        amount=row.amount,
        memo=row.memo,
        entry_id=row.entry_id,
        created_at=row.created_at,
        charged=charged,
        refunded=refunded,
        available=available,
        replay=replay,
    )


async def adjust_balance(
    db: Database,
    *,
    account_id: str,
    amount: int,
    memo: str,
    allow_negative: bool = False,
    idempotency_key: str | None = None,
) -> Adjustment:
    """Credit (``amount`` > 0) or debit (< 0) the account's available balance. With an
    ``idempotency_key``, a repeat (same key, account and amount) posts nothing and returns
    the first adjustment (available as it is now).

    Raises:
        AccountNotFound: no such account.
        InvalidParameter: a zero amount, no memo, a credit past the largest amount, or a key
            used for another change.
        InsufficientBalance: a debit would take available below zero (``allow_negative``
            permits it).
    """
    memo = _memo(memo)
    if amount == 0:
        raise InvalidParameter("an adjustment must not be zero")
    now = utcnow()
    async with db.transaction(write=True) as conn:
        if idempotency_key is not None:
            asked = LedgerRequest(idempotency_key, account_id, "adjust", amount, None, now)
            prior = await ledger_requests_db.claim(conn, asked)
            if prior is not None:
                account = await accounts_db.get_account(conn, account_id)
                entry = prior.entry_id or ""
                return Adjustment(
                    entry, account_id, amount, memo, account.available, prior.created_at
                )
        entry_id = await _post_adjustment(conn, account_id, amount, memo, now, allow_negative)
        if idempotency_key is not None:
            await ledger_requests_db.settle(conn, idempotency_key, entry_id)
        after = await accounts_db.get_account(conn, account_id)
    return Adjustment(entry_id, account_id, amount, memo, after.available, now)


async def _post_adjustment(
    conn: Connection, account_id: str, amount: int, memo: str, now: datetime, allow_negative: bool
) -> str:
    account = _with_room(await accounts_db.get_account(conn, account_id), amount)
    floor = None if allow_negative or amount > 0 else 0
    if not await operator_db.try_adjust_available(conn, account_id, amount, floor=floor):
        raise InsufficientBalance(
            f"a debit of {format_amount(-amount)} CNY would take account {account_id} below "
            f"zero (available {format_amount(account.available)}); "
            "pass --allow-negative to allow it"
        )
    return await accounts_db.record_entry(
        conn,
        kind=ledger.EntryKind.ADJUST,
        account_id=account_id,
        postings=ledger.adjust(amount),
        now=now,
        memo=memo,
    )


async def list_runs(
    db: Database,
    *,
    account_id: str | None = None,
    workflow_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Run]:
    """Runs of every account (model runs too), newest first."""
    where = RunFilter(account_id=account_id, workflow_id=workflow_id, status=status)
    async with db.transaction() as conn:
        return await operator_db.list_runs(conn, where, limit=limit)


async def describe_run(db: Database, run_order_id: str) -> RunDetail:
    async with db.transaction() as conn:
        run = await runs_db.find_run(conn, run_order_id)
        if run is None:
            raise RunNotFound(f"run {run_order_id} does not exist")
        events = await runs_db.list_events(conn, run.id, limit=LOG_TAIL)
        refunds = await operator_db.refunds_of_run(conn, run.id)
    return RunDetail(run, events, refunds)


async def cancel_run(db: Database, run_order_id: str) -> CancelResult:
    """Cancel any account's run by the customer's own path (:func:`services.runs.cancel_run`):
    a queued run ends and its freeze is released; a running one stops at its next step."""
    from wfrun.services import runs as runs_service  # engines and providers: only to cancel

    async with db.transaction() as conn:
        run = await runs_db.find_run(conn, run_order_id)
    if run is None:
        raise RunNotFound(f"run {run_order_id} does not exist")
    principal = Principal(account_id=run.account_id, api_key_id="", display_name="operator")
    return await runs_service.cancel_run(db, principal, run.id, family=run.family)


async def unpublish_workflow(db: Database, workflow_id: str) -> Workflow:
    """Take the workflow off the market: new runs are refused; runs in flight finish."""
    return await _retire(db, workflow_id, archive=False)


async def archive_workflow(db: Database, workflow_id: str) -> Workflow:
    """Unpublish the workflow and hide it from the operator's lists (``publish`` brings it
    back)."""
    return await _retire(db, workflow_id, archive=True)


async def _retire(db: Database, workflow_id: str, *, archive: bool) -> Workflow:
    async with db.transaction(write=True) as conn:
        workflow = await operator_db.retire_workflow(
            conn, workflow_id, now=utcnow(), archive=archive
        )
    if workflow is None:
        raise WorkflowNotFound(f"workflow {workflow_id} does not exist")
    return workflow
