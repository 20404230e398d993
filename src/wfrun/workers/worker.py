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

from structlog.contextvars import bind_contextvars

from wfrun import ids
from wfrun.config import WorkerSettings
from wfrun.domain.scheduling import INSTANCE_KINDS
from wfrun.engines.base import HAND_BACK
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
from wfrun.workers.stopping import StopSignals
from wfrun.workers.webhooks import WebhookDelivery

log = logging.getLogger(__name__)

BATCH_MAX = 32
"""The most jobs one claim takes (a worker with more free slots claims again at once)."""


async def run_embedded(
    runtime: Runtime, stop: asyncio.Event, signals: StopSignals | None = None
) -> None:
    """A worker inside the API's process (``wfrun serve``), woken at once by its submits.

    It stops on ``signals`` (the process's SIGTERM, before the API has closed its
    connections) or when the API's lifespan ends (``stop``), whichever comes first."""
    signals = signals or StopSignals()
    relay = asyncio.create_task(signals.follow(stop))
    try:
        await Worker(runtime, wakeup=runtime.wakeup).run(signals.stop, signals.hurry)
    finally:
        relay.cancel()


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
        metrics=runtime.metrics,
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
        self.limits = runtime.settings.limits
        self.tracker = Tracker(runtime.seedance) if runtime.seedance is not None else None
        self.wakeup = wakeup or asyncio.Event()
        self.heartbeat = Periodic(
            "heartbeat",
            # also how fast a user's cancel reaches a node that is busy for a long time
            min(self.settings.lease_seconds / 3, 1.0),
            self._beat,
        )
        self.loops: list[
            Periodic | RetentionSweep | InstanceProbe | ProviderTracking | WebhookDelivery
        ] = [
            self.heartbeat,
            RetentionSweep(
                runtime.db, runtime.storage, runtime.settings.assets.sweep_interval_seconds
            ),
            InstanceProbe(runtime.db, self.settings.probe_interval, self.wakeup),
            WebhookDelivery.from_runtime(runtime),
            queue_sweep(runtime.db, self.settings.queue_sweep_interval),
        ]
        if self.tracker is not None:
            self.loops.append(ProviderTracking(self.tracker))
        self._active: dict[str, _Active] = {}
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._registered = False
        self._backoff = Backoff(self.settings.poll_interval)
        self._outage: DatabaseUnavailable | None = None
        """The last claim's database outage (burst mode reports it instead of ending)."""

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

    async def run(self, stop: asyncio.Event, hurry: asyncio.Event | None = None) -> None:
        """Work until ``stop`` is set; then claim nothing more, let the runs in flight finish
        for up to ``drain_seconds`` (less once ``hurry`` is set) and hand the rest back."""
        await self._register_until_done(stop)
        listener = None
        if not self.deps.db.is_sqlite:
            listener = JobListener(self.deps.db.url, self.wakeup)
            await listener.start()
        halt = asyncio.Event()  # the loops (heartbeat!) outlive ``stop`` until the drain ends
        loops = [asyncio.create_task(loop.run(halt)) for loop in self.loops]
        try:
            await self._claim_until(stop)
        finally:
            await self._stop(hurry or asyncio.Event())
            await _halt(halt, loops)
            if listener is not None:
                await listener.stop()

    async def _claim_until(self, stop: asyncio.Event) -> None:
        contended = False
        while await self._free_slot(stop):
            slots = await self._more_slots()
            self.wakeup.clear()  # before the claim, so a wake-up during it is not lost
            outcome = await self._claim_into(slots)
            if outcome == "contended" and not contended:  # once: it sees the winner's claim
                contended = True
                continue
            contended = False
            if outcome in ("empty", "exhausted", "contended"):  # a submit or freed slot wakes it
                await self._idle(stop, self.settings.poll_interval)
            elif outcome == "unavailable":
                await self._idle(stop, self._backoff.next())

    async def _more_slots(self) -> int:
        """With one slot held, take the other free ones too (up to :data:`BATCH_MAX` in
        all): one claim fills them. Taking a free slot does not wait."""
        held = 1
        while held < BATCH_MAX and not self._slots.locked():
            await self._slots.acquire()
            held += 1
        return held

    async def _free_slot(self, stop: asyncio.Event) -> bool:
        """Wait for a free slot; False, holding none, once ``stop`` is set (a slot freed by a
        run ending after the stop request must not start another run)."""
        if stop.is_set():
            return False
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not stop.is_set():
            return True
        acquire.cancel()
        [acquired] = await asyncio.gather(acquire, return_exceptions=True)
        if acquired is True:  # it got the slot before the cancel landed
            self._slots.release()
        return False

    async def run_until_idle(self) -> None:
        """Burst mode: run jobs until the queue is empty and nothing is in flight.

        Raises:
            DatabaseUnavailable: a claim could not reach the database (nothing in flight)."""
        await self.register()
        stop = asyncio.Event()
        beat = asyncio.create_task(self.heartbeat.run(stop))
        try:
            while True:
                await self._slots.acquire()
                outcome = await self._claim_into(await self._more_slots())
                if outcome in ("empty", "unavailable"):
                    if not self._active:
                        if outcome == "unavailable" and self._outage is not None:
                            raise self._outage  # not an empty queue: say so
                        if await self._track_once():
                            continue
                        return
                    await asyncio.wait(
                        [a.task for a in self._active.values()], return_when=asyncio.FIRST_COMPLETED
                    )
        finally:
            await _halt(stop, [beat])

    async def _claim_and_start(self) -> str:
        """Claim one job (no slot held: burst helpers and tests); see :meth:`_claim_batch`."""
        outcome, _ = await self._claim_batch(1)
        return outcome

    async def _claim_into(self, slots: int) -> str:
        """:meth:`_claim_batch` with ``slots`` slots held: each started run keeps one (its
        task frees it), the rest are freed now."""
        outcome, started = await self._claim_batch(slots)
        for _ in range(slots - started):
            self._slots.release()
        return outcome

    async def _claim_batch(self, slots: int) -> tuple[str, int]:
        """Claim up to ``slots`` jobs, and how many runs it started: ``started`` (each runs
        in a task; ``exhausted`` when the claim found no more due jobs than it took: claiming
        again at once would find nothing), ``settled`` (all ended on the spot), ``empty``
        (nothing to claim, or the claim failed), ``contended`` (rolled back: a claim at the same
        moment took an account's last running place first) or ``unavailable`` (the
        database)."""
        try:
            batch = await claims.claim_batch(
                self.deps.db,
                worker_id=self.id,
                lease=self.lease,
                running_cap=self.limits.max_running_runs,
                limit=slots,
            )
        except DatabaseUnavailable as exc:
            log.warning("claiming: %s", exc.detail)
            self._outage = exc
            return "unavailable", 0
        except Exception:
            log.exception("claim failed")
            return "empty", 0
        self._backoff.reset()
        for claim in batch.claims:
            # a provider run can be claimed with its cancel already requested (see claim_next)
            control = RunControl(cancel_requested=claim.run.cancel_requested_at is not None)
            task = asyncio.create_task(self._run(claim, control))
            self._active[claim.run.id] = _Active(claim, control, task)
        if batch.claims:
            return "exhausted" if batch.exhausted else "started", len(batch.claims)
        if batch.settled:
            return "settled", 0
        return "empty" if batch.exhausted else "contended", 0

    async def _run(self, claim: Claim, control: RunControl) -> None:
        # its own task: every line logged while the run executes names it
        bind_contextvars(run_order_id=claim.run.id, account_id=claim.run.account_id)
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

    async def _stop(self, hurry: asyncio.Event) -> None:
        if not self._active:
            log.info("worker %s stopped: no run in flight", self.id)
            return
        log.info(
            "worker %s stopping: claiming nothing more; waiting up to %g s for %d run(s): %s",
            self.id,
            self.settings.drain_seconds,
            len(self._active),
            ", ".join(sorted(self._active)),
        )
        await self._drain(hurry)
        if self._active:
            await self._hand_back()
        log.info("worker %s stopped", self.id)

    async def _drain(self, hurry: asyncio.Event) -> None:
        """Wait for the runs in flight until they are done, the drain time is up, or hurried."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.settings.drain_seconds
        hurried = asyncio.ensure_future(hurry.wait())
        try:
            while self._active and not hurry.is_set() and (left := end - loop.time()) > 0:
                tasks = [a.task for a in self._active.values()]
                await asyncio.wait(
                    [*tasks, hurried], timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            hurried.cancel()

    async def _hand_back(self) -> None:
        """Stop the unfinished runs here and give their jobs back to the queue, so another
        worker takes them now rather than after their leases lapse."""
        active = list(self._active.values())
        for entry in active:
            entry.control.handing_back = True  # before anything can interrupt the run
            entry.task.cancel(HAND_BACK)  # a ComfyUI prompt stays, for the next owner
            if entry.claim.spec.engine_kind not in INSTANCE_KINDS:
                entry.control.interrupt.set()  # a built-in engine's node stops at its next check
        await asyncio.gather(*(entry.task for entry in active), return_exceptions=True)
        try:
            returned = await worker_registry.hand_back(
                self.deps.db, worker_id=self.id, claims=[entry.claim for entry in active]
            )
        except DatabaseUnavailable as exc:
            log.warning("handing runs back: %s; they go on when their leases lapse", exc.detail)
            return
        log.warning(
            "worker %s handed back %d unfinished run(s): %s",
            self.id,
            len(returned),
            ", ".join(returned),
        )


async def _halt(halt: asyncio.Event, loops: list[asyncio.Task[None]]) -> None:
    """Stop the background loops and wait for them: each ends its round and closes its
    clients (cancelling one while it closes a client would leak the client's sockets)."""
    halt.set()
    await asyncio.gather(*loops, return_exceptions=True)
