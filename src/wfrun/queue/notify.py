"""Wake-ups for idle workers: PostgreSQL ``LISTEN wfrun_jobs`` (the jobs table's trigger
notifies on insert and requeue). On SQLite there is no listener; workers rely on in-process
wake-ups and polling. A lost listener connection only costs latency: polling still finds work.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

CHANNEL = "wfrun_jobs"
log = logging.getLogger(__name__)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class JobListener:
    """Sets ``wakeup`` whenever PostgreSQL announces claimable jobs."""

    def __init__(self, url: str, wakeup: asyncio.Event) -> None:
        self._dsn = _dsn(url)
        self._wakeup = wakeup
        self._conn: Any = None

    async def start(self) -> None:
        try:
            self._conn = await asyncpg.connect(self._dsn)
            await self._conn.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN %s unavailable, polling only: %s", CHANNEL, exc)
            self._conn = None

    def _notified(self, *_args: Any) -> None:
        self._wakeup.set()

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
