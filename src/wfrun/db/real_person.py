"""Real-person verifications. Callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none
from wfrun.db.schema import real_person_verifications as table


@dataclass(frozen=True, slots=True)
class Verification:
    """A ``real_person_verifications`` row: one H5 liveness session of an account's person."""

    id: str
    account_id: str
    status: str
    byted_token: str | None
    h5_link: str | None
    group_id: str | None
    error: str | None
    created_at: datetime
    completed_at: datetime | None


async def insert_verification(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(table).values(**values))


async def find_verification(conn: Connection, verification_id: str) -> Verification | None:
    query = select(table).where(table.c.id == verification_id)
    return record_or_none(Verification, (await conn.execute(query)).mappings().first())


async def complete_pending(conn: Connection, verification_id: str, values: dict[str, Any]) -> None:
    """Close a verification that is still pending (a completed one never changes)."""
    await conn.execute(
        update(table)
        .where(table.c.id == verification_id, table.c.status == "pending")
        .values(**values)
    )


async def latest_group(conn: Connection, account_id: str) -> str | None:
    """The account's most recently verified person group, if any."""
    query = (
        select(table.c.group_id)
        .where(table.c.account_id == account_id, table.c.status == "verified")
        .order_by(table.c.completed_at.desc())
        .limit(1)
    )
    found = (await conn.execute(query)).scalar_one_or_none()
    return None if found is None else str(found)
