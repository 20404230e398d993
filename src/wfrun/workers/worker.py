"""A worker process: the claim loop (claim → run → settle, with bounded concurrency), its
heartbeat, and the background loops of ``workers/loops.py``, wired here.

All coordination goes through the database; any number of workers may run anywhere. A worker
that dies simply stops heartbeating: its jobs' leases lapse and another worker re-claims them
under a higher attempt number (the fencing token).

A worker outlives database outages: registering, claiming and heartbeating are retried
(claims with a :class:`~wfrun.workers.loops.Backoff` up to 2 s); runs in flight that cannot
write are left to their leases, and a heartbeat that gets through after the outage keeps the
runs nobody re-claimed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from wfrun import ids
from wfrun.config import WorkerSettings
from wfrun.errors import DatabaseUnavailable
from wfrun.queue import broker
from wfrun.queue.notify import JobListener
from wfrun.runtime import Runtime
from wfrun.services import claims, worker_registry
from wfrun.services.claims import Claim
from wfrun.workers.loops import (
    Backoff,
    InstanceProbe,
    Periodic,
    ProviderTracking,
    RetentionSweep,
    pause,
    queue_sweep,
)
from wfrun.workers.runner import RunControl, RunnerDeps, run_claim
from wfrun.workers.seedance import Tracker

log = logging.getLogger(__name__)


async def run_embedded(runtime: Runtime, stop: asyncio.Event) -> None:
    """A worker inside the API's process (``wfrun serve``), woken at once by its submits."""
    await Worker(runtime, wakeup=runtime.wakeup).run(stop)


@dataclass
class _Active:
    claim: Claim
    control: RunControl
    task: asyncio.Task[None]


def _runner_deps(runtime: Runtime, settings: WorkerSettings) -> RunnerDeps:
    return RunnerDeps(
        db=runtime.db,
        storage=runtime.storage,
        engines=runtime.engines,
        fetcher=runtime.fetcher,
        output_retention=timedelta(hours=runtime.settings.assets.output_retention_hours),
        retry_delay=timedelta(seconds=settings.retry_delay_seconds),
        busy_delay=timedelta(seconds=settings.busy_delay_seconds),
        seedance=runtime.seedance,
    )


class Worker:
    """One worker process's job loop."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        settings: WorkerSettings | None = None,
        wakeup: asyncio.Event | None = None,
    ) -> None:
        self.id = ids.new_worker_id()
        self.settings = settings or runtime.settings.worker
        self.lease = timedelta(seconds=self.settings.lease_seconds)
        self.deps = _runner_deps(runtime, self.settings)
        self.tracker = Tracker(runtime.seedance) if runtime.seedance is not None else None
        self.heartbeat = Periodic(
            "heartbeat",
            # also how fast a user's cancel reaches a node that is busy for a long time
            min(self.settings.lease_seconds / 3, 1.0),
            self._beat,
        )
        self.loops: list[Periodic | RetentionSweep | InstanceProbe | ProviderTracking] = [
            self.heartbeat,
            RetentionSweep(
                runtime.db, runtime.storage, runtime.settings.assets.sweep_interval_seconds
            ),
            InstanceProbe(runtime.db, runtime.settings.worker.probe_interval),
            queue_sweep(runtime.db, self.settings.queue_sweep_interval),
        ]
        if self.tracker is not None:
            self.loops.append(ProviderTracking(self.tracker))
        self.wakeup = wakeup or asyncio.Event()
        self._active: dict[str, _Active] = {}
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._registered = False
        self._backoff = Backoff(self.settings.poll_interval)

    async def register(self) -> None:
        """Record this worker (once) so queue ETAs know its capacity."""
        if self._registered:
            return
        await worker_registry.register_worker(
            self.deps.db,
            worker_id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.settings.concurrency,
        )
        self._registered = True

    async def _register_until_done(self, stop: asyncio.Event) -> None:
        """Register, waiting out a database outage (a worker may start before its database)."""
        while not stop.is_set():
            try:
                await self.register()
            except DatabaseUnavailable as exc:
                log.warning("registering worker %s: %s", self.id, exc.detail)
                await pause(stop, self._backoff.next())
            else:
                self._backoff.reset()
                return

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then wait for the runs in flight to finish."""
        await self._register_until_done(stop)
        listener = None
        if not self.deps.db.is_sqlite:
            listener = JobListener(self.deps.db.url, self.wakeup)
            await listener.start()
        halt = asyncio.Event()  # the loops outlive ``stop`` until the runs in flight are done
        loops = [asyncio.create_task(loop.run(halt)) for loop in self.loops]
        try:
            while not stop.is_set():
                await self._slots.acquire()
                self.wakeup.clear()  # before the claim, so a wake-up during it is not lost
                outcome = await self._claim_and_start()
                if outcome != "started":
                    self._slots.release()
                if outcome == "empty":
                    await self._idle(stop, self.settings.poll_interval)
                elif outcome == "unavailable":
                    await self._idle(stop, self._backoff.next())
        finally:
            await self._drain()
            await _halt(halt, loops)
            if listener is not None:
                await listener.stop()

    async def run_until_idle(self) -> None:
        """Burst mode: run jobs until the queue is empty and nothing is in flight."""
        await self.register()
        stop = asyncio.Event()
        beat = asyncio.create_task(self.heartbeat.run(stop))
        try:
            while True:
                await self._slots.acquire()
                outcome = await self._claim_and_start()
                if outcome != "started":
                    self._slots.release()
                if outcome in ("empty", "unavailable"):
                    if not self._active:
                        if await self._track_once():
                            continue
                        return
                    await asyncio.wait(
                        [a.task for a in self._active.values()], return_when=asyncio.FIRST_COMPLETED
                    )
        finally:
            await _halt(stop, [beat])

    async def _claim_and_start(self) -> str:
        """Claim one job: ``started`` (runs in a task), ``settled`` (ended on the spot),
        ``empty`` (nothing to claim, or the claim failed) or ``unavailable`` (the database)."""
        try:
            claim = await claims.claim_next(self.deps.db, worker_id=self.id, lease=self.lease)
        except DatabaseUnavailable as exc:
            log.warning("claiming: %s", exc.detail)
            return "unavailable"
        except Exception:
            log.exception("claim failed")
            return "empty"
        self._backoff.reset()
        if isinstance(claim, str):
            return claim
        # a provider run can be claimed with its cancel already requested (see claim_next)
        control = RunControl(cancel_requested=claim.run.cancel_requested_at is not None)
        task = asyncio.create_task(self._run(claim, control))
        self._active[claim.run.id] = _Active(claim, control, task)
        return "started"

    async def _run(self, claim: Claim, control: RunControl) -> None:
        try:
            await run_claim(self.deps, claim, control)
        except DatabaseUnavailable as exc:  # nothing could be written: the lease will lapse
            log.warning("run %s left to its lease: %s", claim.run.id, exc.detail)
        except Exception:  # a provider run's crash (see runner), or its ending failed
            log.exception("run %s crashed its runner; its lease will lapse", claim.run.id)
        finally:
            self._active.pop(claim.run.id, None)
            self._slots.release()
            self.wakeup.set()

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.create_task(self.wakeup.wait()), asyncio.create_task(stop.wait())]
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def _track_once(self) -> bool:
        """Burst mode: while provider tasks are parked, check the due ones; False when none
        are left."""
        if self.tracker is None:
            return False
        async with self.deps.db.transaction() as conn:
            if await broker.tracking_count(conn) == 0:
                return False
        if await self.tracker.tick() == 0:
            await asyncio.sleep(min(self.tracker.deps.settings.poll_min_seconds, 0.2))
        return True

    async def _beat(self) -> None:
        owned = [(a.claim.job_id, a.claim.attempt, run) for run, a in self._active.items()]
        lost, cancelled = await worker_registry.heartbeat(
            self.deps.db, worker_id=self.id, owned=owned, lease=self.lease
        )
        for run_id in lost | cancelled:
            active = self._active.get(run_id)
            if active is None:
                continue
            active.control.lease_lost |= run_id in lost
            if run_id in cancelled and run_id not in lost:
                # Only a user's cancel interrupts the engine. A lost lease does not: the new
                # owner re-attaches to the same engine prompt, and this attempt's late writes
                # are fenced out anyway.
                active.control.cancel_requested = True
                active.control.interrupt.set()

    async def _drain(self) -> None:
        tasks = [a.task for a in self._active.values()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def _halt(halt: asyncio.Event, loops: list[asyncio.Task[None]]) -> None:
    """Stop the background loops and wait for them: each ends its round and closes its
    clients (cancelling one while it closes a client would leak the client's sockets)."""
    halt.set()
    await asyncio.gather(*loops, return_exceptions=True)
