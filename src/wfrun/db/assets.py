"""Assets and the runs that reference them. Callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, insert, select, update

from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import assets, run_assets, runs

_ACTIVE = ("queued", "running")


@dataclass(frozen=True, slots=True)
class Asset:
    """An ``assets`` row: an owned, typed, expiring file in the object store."""

    id: str
    account_id: str
    media_type: str
    mime_type: str
    size_bytes: int
    sha256: str
    filename: str
    purpose: str
    storage_key: str
    created_at: datetime
    expires_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExpiredOutputs:
    """A run whose outputs' retention has lapsed, with the outputs to delete."""

    id: str
    outputs: dict[str, Any] | None


async def insert_asset(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(assets), values)


async def find_asset(
    conn: Connection, asset_id: str, *, account_id: str | None = None
) -> Asset | None:
    query = select(assets).where(assets.c.id == asset_id)
    if account_id is not None:
        query = query.where(assets.c.account_id == account_id)
    return record_or_none(Asset, (await conn.execute(query)).mappings().first())


async def find_assets(
    conn: Connection, asset_ids: list[str], *, account_id: str
) -> dict[str, Asset]:
    """The account's assets among ``asset_ids`` (others' assets are simply absent)."""
    if not asset_ids:
        return {}
    query = select(assets).where(assets.c.id.in_(asset_ids), assets.c.account_id == account_id)
    return await _by_id(conn, query)


async def link_run(conn: Connection, run_id: str, asset_ids: list[str]) -> None:
    if asset_ids:
        rows = [{"run_id": run_id, "asset_id": a} for a in sorted(set(asset_ids))]
        await conn.execute(insert(run_assets), rows)


def _referenced_by_active_run() -> Any:
    return exists().where(
        run_assets.c.asset_id == assets.c.id,
        runs.c.id == run_assets.c.run_id,
        runs.c.status.in_(_ACTIVE),
    )


async def expired_unreferenced(conn: Connection, now: datetime, *, limit: int) -> list[Asset]:
    """Expired assets whose bytes are still stored and no queued/running run needs."""
    query = (
        select(assets)
        .where(assets.c.expires_at <= now, assets.c.deleted_at.is_(None))
        .where(~_referenced_by_active_run())
        .order_by(assets.c.expires_at)
        .limit(limit)
    )
    return records(Asset, (await conn.execute(query)).mappings())


async def mark_deleted(conn: Connection, asset_id: str, now: datetime) -> bool:
    """Mark an asset's bytes gone, unless a run started needing it meanwhile."""
    result = await conn.execute(
        update(assets)
        .where(and_(assets.c.id == asset_id, assets.c.deleted_at.is_(None)))
        .where(~_referenced_by_active_run())
        .values(deleted_at=now)
    )
    return result.rowcount == 1


async def expired_outputs(conn: Connection, now: datetime, *, limit: int) -> list[ExpiredOutputs]:
    query = (
        select(runs.c.id, runs.c.outputs)
        .where(runs.c.outputs_expire_at <= now, runs.c.outputs_deleted_at.is_(None))
        .order_by(runs.c.outputs_expire_at)
        .limit(limit)
    )
    return records(ExpiredOutputs, (await conn.execute(query)).mappings())


async def mark_outputs_deleted(conn: Connection, run_id: str, now: datetime) -> None:
    await conn.execute(update(runs).where(runs.c.id == run_id).values(outputs_deleted_at=now))


async def assets_for_run(conn: Connection, run_id: str) -> dict[str, Asset]:
    """The assets a run's inputs reference, by id."""
    query = (
        select(assets)
        .join(run_assets, run_assets.c.asset_id == assets.c.id)
        .where(run_assets.c.run_id == run_id)
    )
    return await _by_id(conn, query)


async def _by_id(conn: Connection, query: Any) -> dict[str, Asset]:
    found = records(Asset, (await conn.execute(query)).mappings())
    return {asset.id: asset for asset in found}
