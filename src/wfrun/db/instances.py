"""Engine instances (ComfyUI servers) and the capacity they have left. Callers own the txn."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, delete, func, select, update

from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import engine_instances, runs


@dataclass(frozen=True, slots=True)
class Instance:
    """An ``engine_instances`` row: a registered ComfyUI server."""

    id: str
    kind: str
    url: str
    capacity: int
    labels: dict[str, str]
    state: str
    healthy: bool
    consecutive_failures: int
    last_error: str | None
    last_check_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoadedInstance(Instance):
    """An instance with its load: the runs running on it now."""

    busy: int


async def insert_instance(conn: Connection, values: dict[str, Any]) -> Instance | None:
    """Register an instance; None (nothing inserted) when its URL is registered already."""
    statement = insert_ignoring_conflict(conn, engine_instances, ["url"])
    result = await conn.execute(statement.returning(*engine_instances.c), values)
    return record_or_none(Instance, result.mappings().first())


async def find_instance(conn: Connection, ref: str) -> Instance | None:
    """By id or by URL."""
    query = select(engine_instances).where(
        (engine_instances.c.id == ref) | (engine_instances.c.url == ref)
    )
    return record_or_none(Instance, (await conn.execute(query)).mappings().first())


def _busy() -> ScalarSelect[int]:
    """The number of runs running on the instance of the enclosing row."""
    return (
        select(func.count())
        .where(runs.c.instance_id == engine_instances.c.id, runs.c.status == "running")
        .scalar_subquery()
    )


async def list_instances(conn: Connection) -> list[LoadedInstance]:
    query = select(engine_instances, _busy().label("busy")).order_by(engine_instances.c.created_at)
    return records(LoadedInstance, (await conn.execute(query)).mappings())


async def update_instance(conn: Connection, instance_id: str, values: dict[str, Any]) -> int:
    result = await conn.execute(
        update(engine_instances).where(engine_instances.c.id == instance_id).values(**values)
    )
    return result.rowcount


async def delete_instance(conn: Connection, instance_id: str) -> int:
    result = await conn.execute(
        delete(engine_instances).where(engine_instances.c.id == instance_id)
    )
    return result.rowcount


async def lock_schedulable(conn: Connection, kind: str) -> list[LoadedInstance]:
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
    query = (
        select(engine_instances, _busy().label("busy"))
        .where(engine_instances.c.id.in_(ids))
        .order_by(engine_instances.c.id)
    )
    return records(LoadedInstance, (await conn.execute(query)).mappings())


async def record_probe(
    conn: Connection,
    instance_id: str,
    *,
    ok: bool,
    error: str | None,
    now: datetime,
    unhealthy_after: int,
) -> bool:
    """Record a health probe: healthy on success; unhealthy after ``unhealthy_after`` failures
    in a row (one slow or failed probe is tolerated: ComfyUI stalls ~0.5 s under load).

    Returns:
        True when the probe found an unhealthy instance healthy again (it came back).
    """
    if ok:
        values: dict[str, Any] = {"healthy": True, "consecutive_failures": 0, "last_error": None}
        came_back = await conn.execute(
            update(engine_instances)
            .where(engine_instances.c.id == instance_id, engine_instances.c.healthy.is_(False))
            .values(last_check_at=now, **values)
        )
        if came_back.rowcount == 1:
            return True
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
    return False


async def mark_down(
    conn: Connection, instance_id: str, *, error: str, now: datetime, unhealthy_after: int
) -> bool:
    """Mark an instance unhealthy at once: it refused or dropped a connection (a restart or
    an outage, not a stall). It counts as ``unhealthy_after`` failed probes, so only a
    successful probe makes it healthy again. True when it was healthy until now."""
    result = await conn.execute(
        update(engine_instances)
        .where(engine_instances.c.id == instance_id, engine_instances.c.healthy.is_(True))
        .values(
            healthy=False,
            consecutive_failures=unhealthy_after,
            last_error=error,
            last_check_at=now,
        )
    )
    return result.rowcount == 1


async def running_run_ids(conn: Connection, instance_id: str) -> list[str]:
    """The runs placed on the instance that have not ended (running or waiting for it)."""
    query = select(runs.c.id).where(runs.c.instance_id == instance_id, runs.c.status == "running")
    return list((await conn.execute(query.order_by(runs.c.id))).scalars())
