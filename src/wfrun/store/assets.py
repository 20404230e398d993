"""Assets and the runs that reference them. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, and_, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun.store.schema import assets, run_assets, runs

_ACTIVE = ("queued", "running")


async def insert_asset(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(assets), values)


async def find_asset(
    conn: AsyncConnection, asset_id: str, *, account_id: str | None = None
) -> RowMapping | None:
    query = select(assets).where(assets.c.id == asset_id)
    if account_id is not None:
        query = query.where(assets.c.account_id == account_id)
    return (await conn.execute(query)).mappings().first()


async def find_assets(
    conn: AsyncConnection, asset_ids: list[str], *, account_id: str
) -> dict[str, RowMapping]:
    """The account's assets among ``asset_ids`` (others' assets are simply absent)."""
    if not asset_ids:
        return {}
    query = select(assets).where(assets.c.id.in_(asset_ids), assets.c.account_id == account_id)
    return {row["id"]: row for row in (await conn.execute(query)).mappings()}


async def link_run(conn: AsyncConnection, run_id: str, asset_ids: list[str]) -> None:
    if asset_ids:
        rows = [{"run_id": run_id, "asset_id": a} for a in sorted(set(asset_ids))]
        await conn.execute(insert(run_assets), rows)


def _referenced_by_active_run() -> Any:
    return exists().where(
        run_assets.c.asset_id == assets.c.id,
        runs.c.id == run_assets.c.run_id,
        runs.c.status.in_(_ACTIVE),
    )


async def expired_unreferenced(
    conn: AsyncConnection, now: datetime, *, limit: int
) -> Sequence[RowMapping]:
    """Expired assets whose bytes are still stored and no queued/running run needs."""
    query = (
        select(assets.c.id, assets.c.storage_key)
        .where(assets.c.expires_at <= now, assets.c.deleted_at.is_(None))
        .where(~_referenced_by_active_run())
        .order_by(assets.c.expires_at)
        .limit(limit)
    )
    return (await conn.execute(query)).mappings().all()


async def mark_deleted(conn: AsyncConnection, asset_id: str, now: datetime) -> bool:
    """Mark an asset's bytes gone, unless a run started needing it meanwhile."""
    result = await conn.execute(
        update(assets)
        .where(and_(assets.c.id == asset_id, assets.c.deleted_at.is_(None)))
        .where(~_referenced_by_active_run())
        .values(deleted_at=now)
    )
    return result.rowcount == 1


async def expired_outputs(
    conn: AsyncConnection, now: datetime, *, limit: int
) -> Sequence[RowMapping]:
    query = (
        select(runs.c.id, runs.c.outputs)
        .where(runs.c.outputs_expire_at <= now, runs.c.outputs_deleted_at.is_(None))
        .order_by(runs.c.outputs_expire_at)
        .limit(limit)
    )
    return (await conn.execute(query)).mappings().all()


async def mark_outputs_deleted(conn: AsyncConnection, run_id: str, now: datetime) -> None:
    await conn.execute(update(runs).where(runs.c.id == run_id).values(outputs_deleted_at=now))


async def assets_for_run(conn: AsyncConnection, run_id: str) -> dict[str, RowMapping]:
    query = (
        select(assets)
        .join(run_assets, run_assets.c.asset_id == assets.c.id)
        .where(run_assets.c.run_id == run_id)
    )
    return {row["id"]: row for row in (await conn.execute(query)).mappings()}
