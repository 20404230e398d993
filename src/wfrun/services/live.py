"""Waking whoever follows runs live, within milliseconds of a change, from any process.

:class:`LiveSignal` is the one wake-up mechanism for everything that waits on run changes:
event streams (``GET /workflow/run/events``), ``Prefer: wait`` submits, and the webhook
delivery loop. A waiter opens a :meth:`LiveSignal.watch` for an account (or ``None``: all
accounts), reads what it needs, and awaits :meth:`Watch.wait` before reading again. Three
sources wake it:

* commits in this process that wrote a change or log line (``Database.commit_hooks``, wired
  by the runtime: immediate);
* on PostgreSQL, ``NOTIFY wfrun_stream`` from any process (the run stream's commit trigger
  sends the account id; one ``ChannelListener`` per process calls :meth:`LiveSignal.wake`);
* on SQLite (no NOTIFY), one :class:`StreamPoller` per process: it looks at the run stream's
  newest id every ``live.poll_interval`` (25 ms) and wakes the accounts with new rows — one
  tiny query per process, however many streams wait;
* a timer, ``poll_seconds`` (``live.fallback_poll_seconds``): every waiter looks again this
  often anyway, the safety net for a lost listener connection or a stopped poller.

A wake-up says only "look again": waiters re-read the database, so a wake-up lost or doubled
changes nothing but latency. Everything runs in the event loop thread; nothing here locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator

from wfrun.db import stream as stream_db
from wfrun.db.database import Database
from wfrun.errors import DatabaseUnavailable, TooManyStreams

log = logging.getLogger(__name__)

ALL = "*"
"""The watch key of waiters that follow every account."""


class Watch:
    """One waiter's wake-up flag. Call :meth:`wait` between reads: it returns when something
    changed since the previous call returned (or the poll interval passed), and re-arms."""

    def __init__(self, poll_seconds: float) -> None:
        self._event = asyncio.Event()
        self._poll = poll_seconds

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for a wake-up, at most ``timeout`` (default: the poll interval) seconds; True
        when woken. Cleared on return, before the caller reads again: nothing is missed."""
        limit = self._poll if timeout is None else min(timeout, self._poll)
        try:
            await asyncio.wait_for(self._event.wait(), timeout=max(limit, 0))
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True


class LiveSignal:
    """Fans wake-ups out to the watches of an account (see the module docstring)."""

    def __init__(self, *, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._watches: dict[str, set[Watch]] = {}
        self._streams: dict[str, int] = {}

    def wake(self, accounts: Iterable[str] | None = None) -> None:
        """Wake the watches of ``accounts`` (None: every watch) and the all-account ones."""
        if accounts is None:
            targets: Iterable[str] = list(self._watches)
        else:
            targets = [*accounts, ALL]
        for key in targets:
            for watch in self._watches.get(key, ()):
                watch.set()

    def wake_payload(self, payload: str) -> None:
        """A NOTIFY payload (an account id; empty: unknown, wake all)."""
        self.wake([payload] if payload else None)

    @contextlib.contextmanager
    def watch(self, account_id: str | None) -> Iterator[Watch]:
        """A watch woken by changes to ``account_id``'s runs (``None``: any run)."""
        key = ALL if account_id is None else account_id
        watch = Watch(self.poll_seconds)
        self._watches.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches[key]
            watches.discard(watch)
            if not watches:
                del self._watches[key]

    def open_stream(self, key_id: str, limit: int) -> None:
        """Count one more open stream of API key ``key_id`` in this process.

        Raises:
            TooManyStreams: ``limit`` streams of the key are already open.
        """
        current = self._streams.get(key_id, 0)
        if current >= limit:
            raise TooManyStreams(
                f"this API key already has {current} open event streams here (at most {limit}); "
                "close one, or follow the whole account with one stream (no run_order_id)"
            )
        self._streams[key_id] = current + 1

    def stream_count(self) -> int:
        """Event streams open in this process (for metrics and tests)."""
        return sum(self._streams.values())

    def close_stream(self, key_id: str) -> None:
        left = self._streams.get(key_id, 0) - 1
        if left > 0:
            self._streams[key_id] = left
        else:
            self._streams.pop(key_id, None)


class StreamPoller:
    """SQLite's stand-in for ``LISTEN``: one task per process that polls the run stream's
    newest id and wakes the accounts whose runs changed (see the module docstring)."""

    def __init__(self, db: Database, live: LiveSignal, *, interval: float) -> None:
        self._db, self._live, self._interval = db, live, interval
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        async with self._db.transaction() as conn:
            newest, _ = await stream_db.changed_since(conn, 0)
        self._task = asyncio.create_task(self._poll(newest))

    async def _poll(self, seen: int) -> None:
        """Until stopped; a stop waits for the query in progress (never cancels a
        transaction half-way, which would leave its connection to the garbage collector)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
            if self._stop.is_set():
                return
            try:
                async with self._db.transaction() as conn:
                    seen, accounts = await stream_db.changed_since(conn, seen)
            except DatabaseUnavailable as exc:
                log.warning("run stream poll: %s", exc.detail)
                continue
            if accounts:
                self._live.wake(accounts)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
