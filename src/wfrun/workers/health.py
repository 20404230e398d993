"""Health probes of engine instances: ``GET /system_stats`` within a timeout.

ComfyUI stalls every response for ~0.25–0.5 s when it garbage-collects after a prompt, and far
longer while a heavy node holds the GIL; a probe therefore allows several seconds, and an
instance turns unhealthy only after several failed probes in a row (services.instances) —
unless it refused or dropped the connection: nothing listens (a restart, a crash), so it is
unhealthy at once and no run is dispatched to it until a probe gets an answer again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from wfrun.db.database import Database
from wfrun.services import instances

PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class ProbeFailure:
    """Why a probe failed; ``down`` when the connection was refused or dropped."""

    error: str
    down: bool = False


async def probe(client: httpx.AsyncClient, url: str) -> ProbeFailure | None:
    """None when the instance answered like a ComfyUI server, else why not."""
    try:
        response = await client.get(f"{url}/system_stats", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        down = isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError | httpx.ReadError)
        return ProbeFailure(f"{type(exc).__name__}: {exc}", down)
    if response.status_code != 200:
        return ProbeFailure(f"/system_stats answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return ProbeFailure("/system_stats did not answer JSON")
    if isinstance(body, dict) and "system" in body:
        return None
    return ProbeFailure("not a ComfyUI /system_stats")


async def probe_all(db: Database, client: httpx.AsyncClient) -> int:
    """Probe every registered instance once, concurrently, and record the results; the
    number of instances that came back (were unhealthy and answered)."""
    registered = await instances.list_instances(db)
    results = await asyncio.gather(*(probe(client, i.url) for i in registered))
    back = 0
    for instance, failure in zip(registered, results, strict=True):
        back += await instances.record_probe(
            db,
            instance.id,
            ok=failure is None,
            error=None if failure is None else failure.error,
            down=failure is not None and failure.down,
        )
    return back
