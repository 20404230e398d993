"""Freezes and their resolution, inside a caller's transaction.

Every hold resolves exactly once: :func:`resolve_freeze` flips the hold with a conditional
UPDATE (``WHERE status = 'frozen'``); only the caller that flips it posts the ledger entry, and
the ledger's ``(run_id, kind)`` uniqueness backs that up.
"""

from __future__ import annotations

from datetime import datetime

from wfrun import ids
from wfrun.domain import ledger
from wfrun.domain.money import format_amount
from wfrun.domain.pricing import Settlement
from wfrun.domain.runs import FreezeStatus
from wfrun.errors import InsufficientBalance
from wfrun.store import accounts as account_store
from wfrun.store import runs as run_store
from wfrun.store.accounts import Account, Bill, Recharge
from wfrun.store.database import Connection, Database
from wfrun.store.runs import Hold


async def freeze(
    conn: Connection, *, account_id: str, run_id: str, amount: int, now: datetime
) -> None:
    """Freeze ``amount`` for a run, or raise InsufficientBalance (nothing changed)."""
    if not await account_store.try_freeze(conn, account_id, amount):
        raise InsufficientBalance(
            f"available balance does not cover the quote of {format_amount(amount)} CNY"
        )
    await run_store.insert_hold(
        conn,
        {
            "id": ids.new_hold_id(),
            "run_id": run_id,
            "account_id": account_id,
            "amount": amount,
            "status": FreezeStatus.FROZEN,
            "created_at": now,
        },
    )
    await account_store.record_entry(
        conn,
        kind=ledger.EntryKind.FREEZE,
        account_id=account_id,
        postings=ledger.freeze(amount),
        now=now,
        run_id=run_id,
    )


async def resolve_freeze(
    conn: Connection, *, run_id: str, settlement: Settlement, now: datetime
) -> Hold | None:
    """Settle or release the run's hold; None when it was already resolved."""
    status = FreezeStatus.SETTLED if settlement.final_amount > 0 else FreezeStatus.RELEASED
    hold = await run_store.resolve_hold(conn, run_id, status, now)
    if hold is None:
        return None
    if hold.amount != settlement.frozen:
        raise AssertionError(f"hold of {run_id} is {hold.amount}, not {settlement.frozen}")
    postings = ledger.resolve(settlement)
    kind = ledger.EntryKind.SETTLE if status is FreezeStatus.SETTLED else ledger.EntryKind.RELEASE
    await account_store.record_entry(
        conn, kind=kind, account_id=hold.account_id, postings=postings, now=now, run_id=run_id
    )
    await account_store.apply_balance(conn, hold.account_id, postings)
    return hold


async def balance(db: Database, account_id: str) -> Account:
    async with db.transaction() as conn:
        return await account_store.get_account(conn, account_id)


async def bills(
    db: Database, account_id: str, *, order_number: str | None, page: int, size: int
) -> tuple[list[Bill], int]:
    async with db.transaction() as conn:
        return await account_store.bills_page(
            conn, account_id, order_number=order_number, limit=size, offset=(page - 1) * size
        )


async def recharges(
    db: Database, account_id: str, *, page: int, size: int
) -> tuple[list[Recharge], int]:
    async with db.transaction() as conn:
        return await account_store.recharges_page(
            conn, account_id, limit=size, offset=(page - 1) * size
        )
