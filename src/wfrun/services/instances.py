"""Engine instances: the operator registers ComfyUI servers; workers probe their health.

States: ``active`` instances take new runs while healthy; ``draining`` ones finish what they
have and take nothing new. Removing an instance with runs in flight is refused (drain first).
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from wfrun.clock import utcnow
from wfrun.db import instances as instances_db
from wfrun.db.database import Connection, Database, after_commit
from wfrun.db.instances import Instance, LoadedInstance
from wfrun.errors import InstanceBusy, InstanceExists, InstanceNotFound, InvalidParameter
from wfrun.queue import broker
from wfrun.services import ops_log

KINDS = ("comfyui",)
UNHEALTHY_AFTER = 3
_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    """``["gpu=a100", "region=sh"]`` → ``{"gpu": "a100", "region": "sh"}``."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _LABEL.match(key) or not _LABEL.match(value):
            raise InvalidParameter(f"label {pair!r} must look like key=value ([A-Za-z0-9_.-])")
        labels[key] = value
    return labels


def _normalise_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(f"instance URL {url!r} must be http(s)://host[:port]")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


async def add_instance(
    db: Database, *, url: str, capacity: int, labels: dict[str, str], kind: str = "comfyui"
) -> Instance:
    if kind not in KINDS:
        raise InvalidParameter(f"kind must be one of {', '.join(KINDS)}")
    if capacity < 1:
        raise InvalidParameter("capacity must be at least 1")
    values: dict[str, Any] = {
        "id": f"inst_{secrets.token_hex(10)}",
        "kind": kind,
        "url": _normalise_url(url),
        "capacity": capacity,
        "labels": labels,
        "state": "active",
        "healthy": True,
        "consecutive_failures": 0,
        "created_at": utcnow(),
    }
    async with db.transaction(write=True) as conn:
        added = await instances_db.insert_instance(conn, values)
    if added is None:
        raise InstanceExists(f"{values['url']} is already registered")
    return added


async def _get(db: Database, ref: str) -> Instance:
    async with db.transaction() as conn:
        found = await instances_db.find_instance(conn, ref)
    if found is None:
        raise InstanceNotFound(f"no engine instance {ref}")
    return found


async def drain_instance(db: Database, ref: str, *, resume: bool = False) -> Instance:
    instance = await _get(db, ref)
    async with db.transaction(write=True) as conn:
        await instances_db.update_instance(
            conn, instance.id, {"state": "active" if resume else "draining"}
        )
        updated = await instances_db.find_instance(conn, instance.id)
    assert updated is not None
    return updated


async def remove_instance(db: Database, ref: str) -> None:
    instance = await _get(db, ref)
    async with db.transaction(write=True) as conn:
        busy = next(i for i in await instances_db.list_instances(conn) if i.id == instance.id).busy
        if busy:
            raise InstanceBusy(f"{instance.url} has {busy} run(s) in flight; drain it first")
        await instances_db.delete_instance(conn, instance.id)


async def list_instances(db: Database) -> list[LoadedInstance]:
    async with db.transaction() as conn:
        return await instances_db.list_instances(conn)


async def record_probe(
    db: Database, instance_id: str, *, ok: bool, error: str | None, down: bool = False
) -> bool:
    """Record a health probe. ``down``: the instance refused or dropped the connection (it is
    restarting or gone, not stalled), so it turns unhealthy at once instead of after
    ``UNHEALTHY_AFTER`` failures. When an unhealthy instance answers again, the runs waiting
    for it are made claimable now (``instance_waits``); True then, so the caller can wake its
    own worker too.

    The jobs are woken in a transaction of their own, after the instance's: the lock order is
    job → instance on every path (claims, ``instance_waits``), and this one must not hold the
    instance's row while it waits for a job's.
    """
    now = utcnow()
    async with db.transaction(write=True) as conn:
        came_back = await _record_probe(conn, instance_id, ok=ok, error=error, down=down, now=now)
    if came_back:
        async with db.transaction(write=True) as conn:
            waiting = await instances_db.running_run_ids(conn, instance_id)
            await broker.wake_jobs(conn, waiting, now)
    return came_back


async def _record_probe(
    conn: Connection, instance_id: str, *, ok: bool, error: str | None, down: bool, now: datetime
) -> bool:
    """:func:`record_probe`'s write; a health change is logged once it commits."""
    before = await instances_db.find_instance(conn, instance_id)
    if down and await instances_db.mark_down(
        conn, instance_id, error=error or "down", now=now, unhealthy_after=UNHEALTHY_AFTER
    ):
        why = "it refused or dropped the connection"
        _health_changed(conn, before, healthy=False, error=error, why=why)
        return False
    came_back = await instances_db.record_probe(
        conn, instance_id, ok=ok, error=error, now=now, unhealthy_after=UNHEALTHY_AFTER
    )
    if came_back:
        _health_changed(conn, before, healthy=True, error=None, why="a probe got an answer again")
    elif not ok and before is not None and before.healthy:
        after = await instances_db.find_instance(conn, instance_id)
        if after is not None and not after.healthy:
            why = f"{UNHEALTHY_AFTER} probes in a row failed"
            _health_changed(conn, after, healthy=False, error=error, why=why)
    return came_back


def _health_changed(
    conn: Connection, instance: Instance | None, *, healthy: bool, error: str | None, why: str
) -> None:
    if instance is None:
        return
    report = functools.partial(
        ops_log.instance_health, instance.id, instance.url, healthy=healthy, error=error, why=why
    )
    after_commit(conn, report)
