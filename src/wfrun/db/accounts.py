"""Accounts, API keys and the ledger. Callers own the transaction; nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, cast, func, insert, select, update

from wfrun import ids
from wfrun.db import ledger_requests as _ledger_requests  # noqa: F401 - registers its table
from wfrun.db.database import Connection
from wfrun.db.rows import record, record_or_none, records
from wfrun.db.schema import accounts, api_keys, ledger_entries, ledger_postings, runs
from wfrun.db.spend import key_limits
from wfrun.domain.ledger import EntryKind, Posting, balance_deltas
from wfrun.errors import AccountNotFound


@dataclass(frozen=True, slots=True)
class Account:
    """An ``accounts`` row: the cached balance buckets the ledger moves."""

    id: str
    display_name: str
    currency: str
    available: int
    frozen: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An ``api_keys`` row (the secret itself is never stored, only its hash)."""

    id: str
    account_id: str
    name: str
    prefix: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """An active key joined with its account: who is calling."""

    api_key_id: str
    account_id: str
    display_name: str
    spend_limit: int | None
    spend_period: str | None


@dataclass(frozen=True, slots=True)
class Bill:
    """A settled run as a charge."""

    billing_run_id: str
    run_id: str
    title: str
    final_amount: int
    """Set on every settled run (the page lists only those)."""
    created_at: datetime
    started_at: datetime | None
    terminal_at: datetime | None


@dataclass(frozen=True, slots=True)
class Recharge:
    """A top-up ledger entry with the amount it credited."""

    id: str
    memo: str
    created_at: datetime
    amount: int


async def insert_account(
    conn: Connection, *, account_id: str, display_name: str, now: datetime
) -> None:
    await conn.execute(
        insert(accounts).values(id=account_id, display_name=display_name, created_at=now)
    )


async def get_account(conn: Connection, account_id: str) -> Account:
    query = select(accounts).where(accounts.c.id == account_id)
    found = (await conn.execute(query)).mappings().first()
    if found is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    return record(Account, found)


async def list_accounts(conn: Connection) -> list[Account]:
    query = select(accounts).order_by(accounts.c.created_at)
    return records(Account, (await conn.execute(query)).mappings())


async def apply_balance(conn: Connection, account_id: str, postings: list[Posting]) -> None:
    """Apply the customer-bucket deltas of ``postings`` to the cached balance row."""
    available, frozen = balance_deltas(postings)
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(available=accounts.c.available + available, frozen=accounts.c.frozen + frozen)
    )


async def record_entry(
    conn: Connection,
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
    entry, rows = entry_rows(
        kind=kind, account_id=account_id, postings=postings, now=now, run_id=run_id, memo=memo
    )
    await conn.execute(insert(ledger_entries), entry)
    if rows:
        await conn.execute(insert(ledger_postings), rows)
    entry_id: str = entry["id"]
    return entry_id


def entry_rows(
    *,
    kind: EntryKind,
    account_id: str,
    postings: list[Posting],
    now: datetime,
    run_id: str | None = None,
    memo: str = "",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``ledger_entries`` row and ``ledger_postings`` rows :func:`record_entry` inserts
    (for a caller that inserts them with other rows: the submit)."""
    entry_id = ids.new_ledger_id()
    entry = {
        "id": entry_id,
        "kind": kind,
        "account_id": account_id,
        "run_id": run_id,
        "memo": memo,
        "created_at": now,
    }
    rows = [
        {"entry_id": entry_id, "account_id": account_id, "bucket": p.bucket, "amount": p.amount}
        for p in postings
    ]
    return entry, rows


# ---- API keys ----------------------------------------------------------------------------------


async def insert_api_key(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(api_keys), values)


async def find_key_principal(conn: Connection, key_hash: str) -> KeyPrincipal | None:
    """The active key with this hash and its account, or None."""
    query = (
        select(
            api_keys.c.id.label("api_key_id"),
            accounts.c.id.label("account_id"),
            accounts.c.display_name,
            key_limits.c.spend_limit,
            key_limits.c.period.label("spend_period"),
        )
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .outerjoin(key_limits, key_limits.c.key_id == api_keys.c.id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    )
    return record_or_none(KeyPrincipal, (await conn.execute(query)).mappings().first())


async def revoke_api_key(conn: Connection, key_id: str, now: datetime) -> int:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount


async def get_api_key(conn: Connection, key_id: str) -> ApiKey | None:
    query = select(api_keys).where(api_keys.c.id == key_id)
    return record_or_none(ApiKey, (await conn.execute(query)).mappings().first())


async def list_api_keys(conn: Connection, account_id: str | None) -> list[ApiKey]:
    query = select(api_keys).order_by(api_keys.c.created_at)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    return records(ApiKey, (await conn.execute(query)).mappings())


async def bills_page(
    conn: Connection, account_id: str, *, order_number: str | None, limit: int, offset: int
) -> tuple[list[Bill], int]:
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
    return records(Bill, (await conn.execute(page)).mappings()), total


async def recharges_page(
    conn: Connection, account_id: str, *, limit: int, offset: int
) -> tuple[list[Recharge], int]:
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
    rows = (await conn.execute(page.limit(limit).offset(offset))).mappings()
    return records(Recharge, rows), total
