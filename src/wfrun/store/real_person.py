"""Real-person verifications. Callers own the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun.store.schema import real_person_verifications as table


async def insert_verification(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(table).values(**values))


async def find_verification(conn: AsyncConnection, verification_id: str) -> RowMapping | None:
    query = select(table).where(table.c.id == verification_id)
    row: RowMapping | None = (await conn.execute(query)).mappings().first()
    return row


async def complete_pending(
    conn: AsyncConnection, verification_id: str, values: dict[str, Any]
) -> None:
    """Close a verification that is still pending (a completed one never changes)."""
    await conn.execute(
        update(table)
        .where(table.c.id == verification_id, table.c.status == "pending")
        .values(**values)
    )


async def latest_group(conn: AsyncConnection, account_id: str) -> str | None:
    """The account's most recently verified person group, if any."""
    query = (
        select(table.c.group_id)
        .where(table.c.account_id == account_id, table.c.status == "verified")
        .order_by(table.c.completed_at.desc())
        .limit(1)
    )
    found = (await conn.execute(query)).scalar_one_or_none()
    return None if found is None else str(found)
