"""Per-key request rates that hold across API processes, without a database round trip on
any request.

Each API process admits a key's requests from its own token bucket (rate
``requests_per_second``, size ``burst``; an account's override first, ``services.limits``).
Off the request path, every ``limits.sync_interval_seconds`` (:meth:`RateLimiter.run`), it
adds the requests it admitted per key to the key's shared counter (``rate_counters``: one
``UPSERT … RETURNING`` for all its busy keys, one ``SELECT`` for its idle ones) and reads the
total back; what the other processes admitted since the last exchange is taken out of its
own bucket, which may go into debt. So every process's bucket follows the one global bucket
the limit describes, each learning of the others' requests within one sync interval.

The bound: over any stretch of time a key is admitted at most ``rate × time + burst`` plus
what the processes admitted before hearing of each other, about ``(P − 1) × (burst + rate ×
interval)`` for ``P`` processes serving the key (a process meeting a key for the first time
starts with a full bucket). With the defaults (0.2 s), two processes and 10 requests a second
with a burst of 10, a key gets at most 12 more than its budget in one burst, and its long-run
rate is the limit (the debt is paid back). A process that cannot reach the database keeps
admitting from its own bucket alone (each process then allows the full rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from wfrun.clock import utcnow
from wfrun.db import limits as limits_db
from wfrun.db.database import Database
from wfrun.errors import DatabaseUnavailable, RateLimited
from wfrun.services.limits import LimitBook

log = logging.getLogger("wfrun.limits")

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic``; tests pass one they advance)."""

IDLE_SECONDS = 60.0
"""A key unused this long is forgotten once its bucket is full again (a slow key's, later)."""


@dataclass(slots=True)
class Bucket:
    """One key's token bucket in this process."""

    tokens: float
    at: float
    """When ``tokens`` was last brought up to date (clock seconds)."""
    pending: int = 0
    """Requests admitted here and not yet added to the shared counter."""
    seen: int | None = None
    """The shared counter at the last exchange (None: not exchanged yet)."""
    rate: float = 0.0
    size: int = 0
    """The key's rate and bucket size at its last request."""


def _full(bucket: Bucket, now: float) -> bool:
    """Idle long enough to be full again: forgetting it loses nothing."""
    idle = now - bucket.at
    return idle > IDLE_SECONDS and bucket.tokens + idle * bucket.rate >= bucket.size


class RateLimiter:
    """This process's buckets, kept in step with the other processes' through the database."""

    def __init__(self, book: LimitBook, *, clock: Clock = time.monotonic) -> None:
        self.book = book
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self._sync_lock = asyncio.Lock()

    def admit(self, key_id: str, account_id: str) -> None:
        """Count one request of ``key_id``, or refuse it (no database access).

        Raises:
            RateLimited: the key's bucket is empty; ``retry_after`` is when it holds a token.
        """
        rate_and_size = self.book.rate_of(account_id)
        if rate_and_size is None:
            return
        rate, size = rate_and_size
        now = self.clock()
        bucket = self.buckets.get(key_id)
        if bucket is None:
            bucket = self.buckets[key_id] = Bucket(tokens=size, at=now)
        bucket.tokens = min(size, bucket.tokens + (now - bucket.at) * rate)
        bucket.at, bucket.rate, bucket.size = now, rate, size
        if bucket.tokens < 1:
            wait = max(1, math.ceil((1 - bucket.tokens) / rate))
            raise RateLimited(
                f"this API key may make {rate:g} requests a second (burst {size}), over all "
                f"API processes; retry in {wait} s",
                retry_after=wait,
            )
        bucket.tokens -= 1
        bucket.pending += 1

    async def sync(self, db: Database) -> None:
        """Exchange request counts with the other processes (at most two statements)."""
        async with self._sync_lock:
            self._forget_idle()
            if not self.buckets:
                return
            deltas = {k: b.pending for k, b in self.buckets.items() if b.pending}
            idle = [k for k, b in self.buckets.items() if not b.pending]
            async with db.transaction(write=bool(deltas)) as conn:
                totals = await limits_db.add_consumption(conn, deltas, utcnow()) if deltas else {}
                if idle:
                    read = await limits_db.read_consumption(conn, idle)
                    totals |= {key: read.get(key, 0) for key in idle}
            for key, total in totals.items():
                self._learn(key, total, deltas.get(key, 0))

    def _learn(self, key_id: str, total: int, flushed: int) -> None:
        bucket = self.buckets.get(key_id)
        if bucket is None:
            return
        bucket.pending -= flushed
        if bucket.seen is not None:
            bucket.tokens -= total - bucket.seen - flushed  # the other processes' requests
        bucket.seen = total

    def _forget_idle(self) -> None:
        now = self.clock()
        idle = [k for k, b in self.buckets.items() if not b.pending and _full(b, now)]
        for key in idle:
            del self.buckets[key]

    async def run(self, db: Database, stop: asyncio.Event) -> None:
        """Until ``stop``: exchange counts every sync interval, reload the per-account
        overrides every refresh interval."""
        settings = self.book.settings
        refreshed = -math.inf
        failing = False
        while not stop.is_set():
            try:
                if time.monotonic() - refreshed >= settings.overrides_refresh_seconds:
                    await self.book.refresh(db)
                    refreshed = time.monotonic()
                await self.sync(db)
                failing = False
            except DatabaseUnavailable as exc:  # one line per outage, not one per round
                if not failing:
                    log.warning("rate limit sync: %s; each process limits on its own", exc.detail)
                failing = True
            except Exception:
                log.exception("rate limit sync failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.sync_interval_seconds)
