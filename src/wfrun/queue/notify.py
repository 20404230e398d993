"""Wake-ups for idle workers: PostgreSQL ``LISTEN wfrun_jobs`` (the jobs table's trigger
notifies on insert and requeue). On SQLite there is no listener; workers rely on in-process
wake-ups and polling. A lost listener connection only costs latency: polling still finds work.

:class:`ChannelListener` is the general form (any channel, payload passed on, reconnecting):
the API listens on ``wfrun_stream`` (run changes and log lines, see migration 0009) with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
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


class ChannelListener:
    """One PostgreSQL ``LISTEN`` connection that hands every notification's payload to
    ``on_payload`` (called in the event loop). A lost connection is re-opened every
    ``retry_seconds`` until it works; meanwhile callers' own polling covers the gap."""

    def __init__(
        self,
        url: str,
        channel: str,
        on_payload: Callable[[str], None],
        *,
        retry_seconds: float = 1.0,
    ) -> None:
        self._dsn = _dsn(url)
        self._channel = channel
        self._on_payload = on_payload
        self._retry = retry_seconds
        self._conn: Any = None
        self._reconnect: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        if not await self._connect():
            self._reconnect = asyncio.create_task(self._keep_connecting())

    async def _connect(self) -> bool:
        try:
            conn = await asyncpg.connect(self._dsn)
            await conn.add_listener(self._channel, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN %s unavailable, polling only: %s", self._channel, exc)
            return False
        conn.add_termination_listener(self._lost)
        self._conn = conn
        return True

    async def _keep_connecting(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self._retry)
            if self._stopped or await self._connect():
                return

    def _lost(self, *_args: Any) -> None:
        self._conn = None
        if not self._stopped:
            log.warning("LISTEN %s connection lost; reconnecting", self._channel)
            self._reconnect = asyncio.create_task(self._keep_connecting())

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_payload(payload)

    async def stop(self) -> None:
        self._stopped = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
