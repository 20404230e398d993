"""The engine's progress sink for one claimed run: node boundaries and progress within a node,
written to the run at most once per :data:`WRITE_INTERVAL`, in the background.

Why: every write is a fenced transaction (~7 round trips). Writing each node boundary made 14
of a 7-node run's ~20 transactions, and an engine that reports progress within a node
(ComfyUI's ``progress`` messages every ~10 ms, the local engine's long nodes) would write far
more; and the engine waited for each, so events queued up behind the database (issue 11). So
reports only update what is to be written; a background task writes it when the interval has
passed since the last write (:data:`GATHER` after the report that made it due, after a quiet
spell; at once when the last node finishes, so that write overlaps the engine fetching outputs),
gathering the boundary lines reported meanwhile into the same transaction; a boundary followed by a long silent node still shows
within the interval. :meth:`ProgressRecorder.flush` writes what is left once the engine is done.
Progress within a node is kept only when it moves the run by a whole percent.

A write raises ``Fenced`` / ``CancelRequested`` (services.run_progress); a background write's
error is raised from the sink's next call (or ``flush``), so the engine stops at its next report.
A cancel found by a write sets the run's ``interrupt`` instead (when given) rather than
unwinding the engine: the engine then stops as on any cancel (ComfyUI withdraws the prompt and
reports how long it executed), and the runner ends the run cancelled all the same
(:attr:`ProgressRecorder.cancel_seen`).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

from wfrun.clock import utcnow
from wfrun.db.database import Database
from wfrun.services import run_progress
from wfrun.services.claims import CancelRequested, Claim
from wfrun.services.run_progress import ProgressLine

WRITE_INTERVAL = 0.25
"""Seconds between two progress transactions of one run, at least."""
GATHER = 0.05
"""Seconds a write waits after the report that made it due, so the reports right behind it
go in the same transaction: a prompt that runs in a few milliseconds (cached, trivial) writes
its progress once, at its last node, not once at its first node and again at its last."""


class ProgressRecorder:
    """Implements ``engines.base.ProgressSink`` (plus ``node_progress`` and
    ``execution_time``) for one claim."""

    def __init__(
        self,
        db: Database,
        claim: Claim,
        interrupt: threading.Event | None = None,
        *,
        interval: float = WRITE_INTERVAL,
        gather: float = GATHER,
    ) -> None:
        self.db = db
        self.claim = claim
        self.interrupt = interrupt
        self.cancel_seen = False
        self.stop: CancelRequested | None = None
        """The cancel (or cost stop: ``services.cost_stops``) a write found."""
        self.engine_ms: int | None = None
        """Execution time as the engine measured it (ComfyUI's own events), when it says."""
        self.executing_since: float | None = None
        """When the engine reported its first node (``time.monotonic()``): it was executing."""
        self._interval = interval
        self._gather = min(gather, interval)
        self._lines: list[ProgressLine] = []
        self._state: tuple[int, dict[str, Any]] | None = None  # to write: percent, snapshot
        self._shown = 0  # the percentage last reported (written or waiting)
        self._written_at = -math.inf
        self._lock = asyncio.Lock()
        self._sleeper: asyncio.Task[None] | None = None  # a timer that has not written yet
        self._timers: set[asyncio.Task[None]] = set()  # every timer still running
        self._error: Exception | None = None

    async def execution_time(self, milliseconds: int) -> None:
        self.engine_ms = milliseconds

    def executed_ms(self) -> int:
        """The engine time a run is charged: as the engine measured it, else since its first
        node started, else 0 (it never executed: queued on an instance, fetching media)."""
        if self.engine_ms is not None:
            return self.engine_ms
        if self.executing_since is None:
            return 0
        return int((time.monotonic() - self.executing_since) * 1000)

    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        if self.executing_since is None:
            self.executing_since = time.monotonic()
        message = f"executing node {node_id} ({class_type})"
        await self._boundary("executing", message, node_id, class_type, index, total)

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        message = f"node {node_id} ({class_type}) finished"
        await self._boundary("executed", message, node_id, class_type, index + 1, total)

    async def node_progress(
        self, node_id: str, class_type: str, index: int, total: int, fraction: float
    ) -> None:
        """Progress within a running node; kept only when it moves the run a whole percent."""
        percent = _percent(index + fraction, total)
        if percent <= self._shown:
            self._raise_pending_error()
            return
        snapshot = _snapshot(node_id, class_type, index, total) | {"node_fraction": fraction}
        self._offer(percent, snapshot)
        await self._write_if_due()

    async def flush(self) -> None:
        """Writes what is still waiting (the engine is done), after any write in flight;
        raises the error of a background write."""
        self._cancel_timer()
        try:
            await self._write()
        except CancelRequested as exc:
            self._cancel_found(exc)
        self._raise_pending_error()

    def close(self) -> None:
        """Stops the timer without writing (the attempt ended another way)."""
        self._cancel_timer()

    async def _boundary(
        self, event: str, message: str, node_id: str, class_type: str, done: int, total: int
    ) -> None:
        percent = _percent(done, total)
        self._lines.append(ProgressLine(utcnow(), event, node_id, message, percent))
        self._offer(max(percent, self._shown), _snapshot(node_id, class_type, done, total))
        await self._write_if_due(now=event == "executed" and done >= total)  # the last node

    def _offer(self, percent: int, snapshot: dict[str, Any]) -> None:
        self._state = (percent, snapshot)
        self._shown = percent

    async def _write_if_due(self, *, now: bool = False) -> None:
        """Starts a background write when one is due (or ``now``), else makes sure a timer
        will write when it is: the engine never waits for the database here."""
        self._raise_pending_error()
        due = self._written_at + self._interval - time.monotonic()
        wait = 0.0 if now else max(due, self._gather)
        if self._sleeper is not None:
            if wait > 0:
                return  # the timer already set writes it
            self._sleeper.cancel()
        self._sleeper = asyncio.create_task(self._write_later(max(wait, 0.0)))
        self._timers.add(self._sleeper)
        self._sleeper.add_done_callback(self._timers.discard)

    async def _write_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._sleeper = None  # from here on, new reports need a new timer
        try:
            await self._write()
        except CancelRequested as exc:
            self._cancel_found(exc)
        except Exception as exc:  # noqa: BLE001 - raised from the next report (module doc)
            self._error = exc

    def _cancel_found(self, exc: CancelRequested) -> None:
        """The user cancelled: interrupt the engine (module doc), or raise it on without one."""
        self.cancel_seen = True
        self.stop = exc
        if self.interrupt is None:
            self._error = exc
        else:
            self.interrupt.set()

    async def _write(self) -> None:
        async with self._lock:
            if self._state is None:
                return
            (percent, snapshot), lines = self._state, self._lines
            self._state, self._lines = None, []
            self._written_at = time.monotonic()
            await run_progress.record_progress(
                self.db, self.claim, lines=lines, percent=percent, snapshot=snapshot
            )

    def _raise_pending_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _cancel_timer(self) -> None:
        sleeper, self._sleeper = self._sleeper, None
        if sleeper is not None:
            sleeper.cancel()


def _snapshot(node_id: str, class_type: str, done: int, total: int) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "class_type": class_type,
        "completed_nodes": done,
        "total_nodes": total,
    }


def _percent(done: float, total: int) -> int:
    return 100 if total == 0 else min(99, int(done * 100 // total))
