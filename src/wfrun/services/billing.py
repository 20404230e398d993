"""Freezes and their resolution, inside a caller's transaction.

Every freeze resolves exactly once: :func:`resolve_freeze` closes it with a conditional
UPDATE (``WHERE status = 'frozen'``); only the caller that flips it posts the ledger entry, and
the ledger's ``(run_id, kind)`` uniqueness backs that up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wfrun import ids
from wfrun.db import accounts as accounts_db
from wfrun.db import runs as runs_db
from wfrun.db.accounts import Account, Bill, Recharge
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Freeze
from wfrun.domain import ledger
from wfrun.domain.money import format_amount
from wfrun.domain.pricing import Settlement
from wfrun.domain.runs import FreezeStatus
from wfrun.errors import InsufficientBalance
from wfrun.services import ops_log


def freeze_rows(
    *, account_id: str, run_id: str, amount: int, now: datetime
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A run's freeze of ``amount``: its ``freezes`` row and its ledger entry and postings,
    which the submit writes with the balance UPDATE in one go (``queue.submission``); the
    caller raises :func:`insufficient` when that UPDATE found the balance short."""
    row = {
        "id": ids.new_freeze_id(),
        "run_id": run_id,
        "account_id": account_id,
        "amount": amount,
        "status": FreezeStatus.FROZEN,
        "created_at": now,
    }
    entry, postings = accounts_db.entry_rows(
        kind=ledger.EntryKind.FREEZE,
        account_id=account_id,
        postings=ledger.freeze(amount),
        now=now,
        run_id=run_id,
    )
    return row, entry, postings


def insufficient(amount: int) -> InsufficientBalance:
    return InsufficientBalance(
        f"available balance does not cover the quote of {format_amount(amount)} CNY"
    )


@dataclass(frozen=True)
class Resolution:
    """How a settlement resolves a freeze: the freeze's new status, the ledger entry's kind
    and its postings."""

    status: FreezeStatus
    kind: ledger.EntryKind
    postings: list[ledger.Posting]


def freeze_resolution(settlement: Settlement) -> Resolution:
    """Settled when the run costs anything, else released (pure)."""
    if settlement.final_amount > 0:
        return Resolution(FreezeStatus.SETTLED, ledger.EntryKind.SETTLE, ledger.resolve(settlement))
    return Resolution(FreezeStatus.RELEASED, ledger.EntryKind.RELEASE, ledger.resolve(settlement))


def freeze_resolved(
    conn: Connection, run_id: str, account_id: str, status: FreezeStatus, settlement: Settlement
) -> None:
    """Report a freeze resolved (a process log line once committed)."""
    ops_log.settled(conn, run_id, account_id, status, settlement)


async def resolve_freeze(
    conn: Connection, *, run_id: str, settlement: Settlement, now: datetime
) -> Freeze | None:
    """Settle or release the run's freeze (a process log line once committed); None when it
    was already resolved."""
    plan = freeze_resolution(settlement)
    closed = await runs_db.close_freeze(conn, run_id, plan.status, now)
    if closed is None:
        return None
    if closed.amount != settlement.frozen:
        raise AssertionError(f"freeze of {run_id} is {closed.amount}, not {settlement.frozen}")
    await accounts_db.record_entry(
        conn,
        kind=plan.kind,
        account_id=closed.account_id,
        postings=plan.postings,
        now=now,
        run_id=run_id,
    )
    await accounts_db.apply_balance(conn, closed.account_id, plan.postings)
    freeze_resolved(conn, run_id, closed.account_id, plan.status, settlement)
    return closed


async def balance(db: Database, account_id: str) -> Account:
    async with db.read() as conn:
        return await accounts_db.get_account(conn, account_id)


async def bills(
    db: Database, account_id: str, *, order_number: str | None, page: int, size: int
) -> tuple[list[Bill], int]:
    async with db.read() as conn:
        return await accounts_db.bills_page(
            conn, account_id, order_number=order_number, limit=size, offset=(page - 1) * size
        )


async def recharges(
    db: Database, account_id: str, *, page: int, size: int
) -> tuple[list[Recharge], int]:
    async with db.read() as conn:
        return await accounts_db.recharges_page(
            conn, account_id, limit=size, offset=(page - 1) * size
        )
