"""One-time keys of balance changes (a top-up or an adjustment posted from a form): the first
request with a key posts, a repeat finds it instead of posting twice. The table is on
:data:`wfrun.db.schema.metadata` (registered when ``wfrun.db.accounts`` imports this module).
Callers own the transaction; nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, select, update

from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict
from wfrun.db.rows import record_or_none
from wfrun.db.schema import Id, Money, UTCDateTime, metadata
from wfrun.errors import InvalidParameter

ledger_requests = Table(
    "ledger_requests",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", Money, nullable=False),
    Column("entry_id", Id, ForeignKey("ledger_entries.id"), nullable=True, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True, slots=True)
class LedgerRequest:
    """A ``ledger_requests`` row: the balance change a key asked for and the entry it posted
    (None only inside the transaction that claims it)."""

    key: str
    account_id: str
    kind: str
    amount: int
    entry_id: str | None
    created_at: datetime


async def claim(conn: Connection, request: LedgerRequest) -> LedgerRequest | None:
    """Claim the request's key: None when this transaction now holds it (then post and call
    :func:`settle`), else the earlier request of that key. A concurrent claim of the same key
    waits for the first transaction (the primary key decides).

    Raises:
        InvalidParameter: the key was used for another account, kind or amount.
    """
    statement = insert_ignoring_conflict(conn, ledger_requests, ["key"])
    row = {
        "key": request.key,
        "account_id": request.account_id,
        "kind": request.kind,
        "amount": request.amount,
        "entry_id": None,
        "created_at": request.created_at,
    }
    if (await conn.execute(statement.values(**row))).rowcount == 1:
        return None
    query = select(ledger_requests).where(ledger_requests.c.key == request.key)
    prior = record_or_none(LedgerRequest, (await conn.execute(query)).mappings().first())
    assert prior is not None, "a key that conflicted exists"
    asked = (request.account_id, request.kind, request.amount)
    if (prior.account_id, prior.kind, prior.amount) != asked:
        raise InvalidParameter(
            f"idempotency_key: {request.key!r} was already used for another balance change"
        )
    return prior


async def settle(conn: Connection, key: str, entry_id: str) -> None:
    """Name the ledger entry the claimed key posted."""
    await conn.execute(
        update(ledger_requests).where(ledger_requests.c.key == key).values(entry_id=entry_id)
    )
