"""Health probes of engine instances: ``GET /system_stats`` within a timeout.

ComfyUI stalls every response for ~0.25–0.5 s when it garbage-collects after a prompt, and far
longer while a heavy node holds the GIL; a probe therefore allows several seconds, and an
instance turns unhealthy only after several failed probes in a row (services.instances).
"""

from __future__ import annotations

import asyncio

import httpx

from wfrun.db.database import Database
from wfrun.services import instances

PROBE_TIMEOUT = 5.0


async def probe(client: httpx.AsyncClient, url: str) -> str | None:
    """None when the instance answered like a ComfyUI server, else why not."""
    try:
        response = await client.get(f"{url}/system_stats", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return f"/system_stats answered {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "/system_stats did not answer JSON"
    return None if isinstance(body, dict) and "system" in body else "not a ComfyUI /system_stats"


async def probe_all(db: Database, client: httpx.AsyncClient) -> None:
    """Probe every registered instance once, concurrently, and record the results."""
    registered = await instances.list_instances(db)
    results = await asyncio.gather(*(probe(client, i.url) for i in registered))
    for instance, error in zip(registered, results, strict=True):
        await instances.record_probe(db, instance.id, ok=error is None, error=error)
