"""Engine instances (ComfyUI servers) and the capacity they have left. Callers own the txn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun.store.schema import engine_instances, runs


async def insert_instance(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(engine_instances), values)


async def find_instance(conn: AsyncConnection, ref: str) -> RowMapping | None:
    """By id or by URL."""
    query = select(engine_instances).where(
        (engine_instances.c.id == ref) | (engine_instances.c.url == ref)
    )
    return (await conn.execute(query)).mappings().first()


async def list_instances(conn: AsyncConnection) -> Sequence[RowMapping]:
    busy = (
        select(func.count())
        .where(runs.c.instance_id == engine_instances.c.id, runs.c.status == "running")
        .scalar_subquery()
    )
    query = select(engine_instances, busy.label("busy")).order_by(engine_instances.c.created_at)
    return (await conn.execute(query)).mappings().all()


async def update_instance(conn: AsyncConnection, instance_id: str, values: dict[str, Any]) -> int:
    result = await conn.execute(
        update(engine_instances).where(engine_instances.c.id == instance_id).values(**values)
    )
    return result.rowcount


async def delete_instance(conn: AsyncConnection, instance_id: str) -> int:
    result = await conn.execute(
        delete(engine_instances).where(engine_instances.c.id == instance_id)
    )
    return result.rowcount


async def lock_schedulable(conn: AsyncConnection, kind: str) -> Sequence[RowMapping]:
    """Active, healthy instances of ``kind`` with their running-run counts, row-locked (in id
    order, so concurrent schedulers queue instead of deadlocking) until the caller commits."""
    locked = (
        select(engine_instances.c.id)
        .where(
            engine_instances.c.kind == kind,
            engine_instances.c.state == "active",
            engine_instances.c.healthy.is_(True),
        )
        .order_by(engine_instances.c.id)
        .with_for_update()
    )
    ids = list((await conn.execute(locked)).scalars())
    if not ids:
        return []
    busy = (
        select(func.count())
        .where(runs.c.instance_id == engine_instances.c.id, runs.c.status == "running")
        .scalar_subquery()
    )
    query = (
        select(engine_instances, busy.label("busy"))
        .where(engine_instances.c.id.in_(ids))
        .order_by(engine_instances.c.id)
    )
    return (await conn.execute(query)).mappings().all()


async def record_probe(
    conn: AsyncConnection,
    instance_id: str,
    *,
    ok: bool,
    error: str | None,
    now: datetime,
    unhealthy_after: int,
) -> None:
    """Record a health probe: healthy on success; unhealthy after ``unhealthy_after`` failures
    in a row (one slow or failed probe is tolerated: ComfyUI stalls ~0.5 s under load)."""
    if ok:
        values: dict[str, Any] = {"healthy": True, "consecutive_failures": 0, "last_error": None}
    else:
        failures = engine_instances.c.consecutive_failures + 1
        values = {
            "consecutive_failures": failures,
            "healthy": failures < unhealthy_after,
            "last_error": error,
        }
    await conn.execute(
        update(engine_instances)
        .where(engine_instances.c.id == instance_id)
        .values(last_check_at=now, **values)
    )
