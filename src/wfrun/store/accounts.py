"""Accounts, API keys and the ledger. Callers own the transaction; nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, RowMapping, bindparam, cast, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun import ids
from wfrun.domain.ledger import EntryKind, Posting, balance_deltas
from wfrun.errors import AccountNotFound
from wfrun.store.schema import accounts, api_keys, ledger_entries, ledger_postings, runs


async def insert_account(
    conn: AsyncConnection, *, account_id: str, display_name: str, now: datetime
) -> None:
    await conn.execute(
        insert(accounts).values(id=account_id, display_name=display_name, created_at=now)
    )


async def get_account(conn: AsyncConnection, account_id: str) -> RowMapping:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).mappings()
    found = row.first()
    if found is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    return found


async def list_accounts(conn: AsyncConnection) -> Sequence[RowMapping]:
    return (await conn.execute(select(accounts).order_by(accounts.c.created_at))).mappings().all()


_FREEZE = (
    update(accounts)
    .where(accounts.c.id == bindparam("account"), accounts.c.available >= bindparam("amount"))
    .values(
        available=accounts.c.available - bindparam("amount"),
        frozen=accounts.c.frozen + bindparam("amount"),
    )
)


async def try_freeze(conn: AsyncConnection, account_id: str, amount: int) -> bool:
    """Move ``amount`` available → frozen iff available covers it (one conditional UPDATE)."""
    result = await conn.execute(_FREEZE, {"account": account_id, "amount": amount})
    return result.rowcount == 1


async def apply_balance(conn: AsyncConnection, account_id: str, postings: list[Posting]) -> None:
    """Apply the customer-bucket deltas of ``postings`` to the cached balance row."""
    available, frozen = balance_deltas(postings)
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(available=accounts.c.available + available, frozen=accounts.c.frozen + frozen)
    )


async def record_entry(
    conn: AsyncConnection,
    *,
    kind: EntryKind,
    account_id: str,
    postings: list[Posting],
    now: datetime,
    run_id: str | None = None,
    memo: str = "",
) -> str:
    """Append one balanced ledger entry. A second entry of the same kind for a run violates
    the ``one_per_run`` constraint, so a replayed settle can never post twice."""
    entry_id = ids.new_ledger_id()
    await conn.execute(
        insert(ledger_entries),
        {
            "id": entry_id,
            "kind": kind,
            "account_id": account_id,
            "run_id": run_id,
            "memo": memo,
            "created_at": now,
        },
    )
    rows = [
        {"entry_id": entry_id, "account_id": account_id, "bucket": p.bucket, "amount": p.amount}
        for p in postings
    ]
    if rows:
        await conn.execute(insert(ledger_postings), rows)
    return entry_id


# ---- API keys ----------------------------------------------------------------------------------


async def insert_api_key(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(api_keys), values)


async def find_key_principal(conn: AsyncConnection, key_hash: str) -> RowMapping | None:
    """The active key with this hash and its account, or None."""
    query = (
        select(
            api_keys.c.id.label("api_key_id"),
            accounts.c.id.label("account_id"),
            accounts.c.display_name,
        )
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    )
    return (await conn.execute(query)).mappings().first()


async def revoke_api_key(conn: AsyncConnection, key_id: str, now: datetime) -> int:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount


async def get_api_key(conn: AsyncConnection, key_id: str) -> RowMapping | None:
    return (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).mappings().first()


async def list_api_keys(conn: AsyncConnection, account_id: str | None) -> Sequence[RowMapping]:
    query = select(api_keys).order_by(api_keys.c.created_at)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    return (await conn.execute(query)).mappings().all()


async def bills_page(
    conn: AsyncConnection, account_id: str, *, order_number: str | None, limit: int, offset: int
) -> tuple[Sequence[RowMapping], int]:
    """Settled runs (what was charged), newest first, with the total count."""
    charged = select(
        runs.c.billing_run_id,
        runs.c.id.label("run_id"),
        runs.c.title,
        runs.c.final_amount,
        runs.c.created_at,
        runs.c.started_at,
        runs.c.terminal_at,
    ).where(runs.c.account_id == account_id, runs.c.freeze_status == "settled")
    if order_number:
        charged = charged.where(runs.c.billing_run_id == order_number)
    total_query = select(func.count()).select_from(charged.subquery())
    total = int((await conn.execute(total_query)).scalar_one())
    page = charged.order_by(runs.c.terminal_at.desc(), runs.c.id).limit(limit).offset(offset)
    return (await conn.execute(page)).mappings().all(), total


async def recharges_page(
    conn: AsyncConnection, account_id: str, *, limit: int, offset: int
) -> tuple[Sequence[RowMapping], int]:
    """Top-ups, newest first, with the amount credited and the total count."""
    # SUM(bigint) is numeric on PostgreSQL: cast back so money stays an int.
    amount = cast(func.coalesce(func.sum(ledger_postings.c.amount), 0), BigInteger).label("amount")
    topups = (
        select(ledger_entries.c.id, ledger_entries.c.memo, ledger_entries.c.created_at, amount)
        .join(ledger_postings, ledger_postings.c.entry_id == ledger_entries.c.id)
        .where(
            ledger_entries.c.account_id == account_id,
            ledger_entries.c.kind == "topup",
            ledger_postings.c.bucket == "available",
        )
        .group_by(ledger_entries.c.id, ledger_entries.c.memo, ledger_entries.c.created_at)
    )
    total_query = select(func.count()).select_from(topups.subquery())
    total = int((await conn.execute(total_query)).scalar_one())
    page = topups.order_by(ledger_entries.c.created_at.desc(), ledger_entries.c.id)
    rows = (await conn.execute(page.limit(limit).offset(offset))).mappings().all()
    return rows, total
