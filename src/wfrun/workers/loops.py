"""The background loops of a worker process, one small class each; :class:`Worker` wires them
(``workers/worker.py``). Each runs until its ``stop`` event is set, survives a failing round
(logged, tried again next round; the database being unavailable is one warning line, not a
traceback) and wakes at once when stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from wfrun.clock import utcnow
from wfrun.db.database import Database
from wfrun.errors import DatabaseUnavailable
from wfrun.services import assets, queue_deadlines
from wfrun.storage.base import ObjectStore
from wfrun.workers import health
from wfrun.workers.seedance import Tracker

log = logging.getLogger(__name__)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


@dataclass
class Backoff:
    """Waits between tries while the database is unavailable: from ``first`` doubling up to
    ``cap`` seconds, back to ``first`` after a success (so a worker resumes within ``cap``
    seconds of the database coming back, without hammering it while it is down)."""

    first: float
    cap: float = 2.0
    _current: float = 0.0

    def next(self) -> float:
        self._current = min(self.cap, self._current * 2 if self._current else self.first)
        return self._current

    def reset(self) -> None:
        self._current = 0.0


@dataclass
class Periodic:
    """Run ``step`` every ``interval`` seconds."""

    name: str
    interval: float
    step: Callable[[], Awaitable[object]]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except DatabaseUnavailable as exc:  # one line a round until the database is back
                log.warning("%s: %s", self.name, exc.detail)
            except Exception:
                log.exception("%s failed", self.name)
            await pause(stop, self.interval)


@dataclass
class RetentionSweep:
    """Delete expired assets' and outputs' bytes (never those a live run still needs)."""

    db: Database
    storage: ObjectStore
    interval: float

    async def run(self, stop: asyncio.Event) -> None:
        await Periodic("retention sweep", self.interval, self.sweep).run(stop)

    async def sweep(self) -> None:
        removed = await assets.sweep(self.db, self.storage)
        if any(removed):
            log.info("retention removed %d assets and the outputs of %d runs", *removed)


def queue_sweep(db: Database, interval: float) -> Periodic:
    """Fail queued runs past their queue deadline (``QUEUE_TIMEOUT``, freeze released) and
    log once why nothing can start a waiting run. Claims pass a lane with no capacity by, so
    this sweep is what ends its runs at their deadline."""

    async def sweep() -> None:
        now = utcnow()
        expired = await queue_deadlines.expire_overdue(db, now)
        if expired:
            log.info("%d queued runs missed their queue deadline (QUEUE_TIMEOUT)", expired)
        await queue_deadlines.explain_waits(db, now)

    return Periodic("queue sweep", interval, sweep)


@dataclass
class InstanceProbe:
    """Probe engine instances so scheduling only uses healthy ones; when one comes back, the
    runs waiting for it are claimable at once and ``wakeup`` (this process's worker) is set."""

    db: Database
    interval: float
    wakeup: asyncio.Event | None = None

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:

            async def probe() -> None:
                if await health.probe_all(self.db, client) and self.wakeup is not None:
                    self.wakeup.set()

            await Periodic("instance health probe", self.interval, probe).run(stop)


@dataclass
class ProviderTracking:
    """Provider tasks (Seedance): one batch check at a time, all due tasks in turn; a full
    batch means more may be due, so the next round starts at once."""

    tracker: Tracker

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.tracker.deps.settings
        idle = min(settings.poll_min_seconds, 1.0)
        while not stop.is_set():
            try:
                handled = await self.tracker.tick()
            except DatabaseUnavailable as exc:
                log.warning("provider tracking: %s", exc.detail)
                handled = 0
            except Exception:
                log.exception("provider tracking failed")
                handled = 0
            if handled < settings.tracker_batch:
                await pause(stop, idle)
