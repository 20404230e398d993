"""The webhook delivery loop of a worker process: fan the outbox out, claim due deliveries,
send them concurrently (bounded), record each attempt.

Sends run as tasks beside the loop, at most ``webhooks.concurrency`` at once, never inside a
transaction, so slow receivers never hold a database connection or delay run processing (the
job loop runs elsewhere). :meth:`WebhookDelivery.wait_for_work` is the one place that decides
when to look again: when a run changes (``Runtime.live``: this process's commits, and other
processes' once the runtime listens — ``wfrun serve`` and ``wfrun worker`` do), at the latest
after ``webhooks.poll_interval`` (retries falling due, a missed wake-up). A wake-up is
followed by ``webhooks.gather_seconds`` before the look: a round (the fan-out's read and
transaction) costs more than the changes it handles, and a burst of runs wakes it for every
change — at 100 runs/s, ~300 rounds a second competed with the runs on the same event loop;
gathered, ten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from wfrun.api import wire
from wfrun.clock import utcnow
from wfrun.config import WebhookSettings
from wfrun.db.database import Database
from wfrun.db.runs import Run
from wfrun.domain import webhooks
from wfrun.errors import DatabaseUnavailable
from wfrun.fetch import FetchPolicy
from wfrun.fetch.sender import SafeSender
from wfrun.metrics import Metrics
from wfrun.runtime import Runtime, webhook_policy
from wfrun.services import webhook_delivery, webhook_progress
from wfrun.services.live import LiveSignal, Watch
from wfrun.services.webhook_delivery import Outgoing, Render, RetryPolicy
from wfrun.services.webhook_secrets import SecretBox
from wfrun.storage.links import Links
from wfrun.workers.loops import pause

log = logging.getLogger(__name__)


def run_info_renderer(runtime: Runtime) -> Render:
    """A run's ``run/info`` data as the API renders it (``/model-runs/info`` for model runs),
    with links signed for the public base URL."""
    settings = runtime.settings
    links = Links(
        runtime.signer, runtime.storage, settings.public_origin, settings.signed_url_ttl_seconds
    )

    def render(run: Run) -> dict[str, Any]:
        if run.family == "model":
            return wire.model_run(run, links)
        return wire.run_info(run, links)

    return render


@dataclass
class WebhookDelivery:
    db: Database
    box: SecretBox
    settings: WebhookSettings
    policy: FetchPolicy
    render: Render
    live: LiveSignal | None = None
    metrics: Metrics | None = None
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> WebhookDelivery:
        settings = runtime.settings.webhooks
        return cls(
            runtime.db,
            runtime.webhook_box,
            settings,
            webhook_policy(settings),
            run_info_renderer(runtime),
            runtime.live,
            runtime.metrics,
        )

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            self.settings.retry_schedule_seconds,
            self.settings.retry_jitter,
            timedelta(seconds=self.settings.disable_after_seconds),
        )

    async def run(self, stop: asyncio.Event) -> None:
        sender = SafeSender(self.policy)
        try:
            with self._watch() as watch:
                while not stop.is_set():
                    if not await self.round(sender):  # found work: look again at once
                        await self.wait_for_work(stop, watch)
        finally:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            await sender.aclose()

    @contextlib.contextmanager
    def _watch(self) -> Iterator[Watch | None]:
        """A watch on every run's changes, open across rounds so none is missed between them."""
        if self.live is None:
            yield None
            return
        with self.live.watch(None) as watch:
            yield watch

    async def wait_for_work(self, stop: asyncio.Event, watch: Watch | None) -> None:
        """Until the next look at the outbox and the due deliveries (module docstring)."""
        if watch is None:
            await pause(stop, self.settings.poll_interval)
            return
        woken = asyncio.ensure_future(watch.wait(self.settings.poll_interval))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({woken, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (woken, stopped):
            waiter.cancel()
        if woken.done() and not woken.cancelled() and woken.result():
            await pause(stop, self.settings.gather_seconds)

    async def round(self, sender: SafeSender) -> bool:
        """One look at what waits (one read); then the fan-outs it found work for and one
        claim of as many due deliveries as there are free slots; whether it did anything."""
        try:
            work = await webhook_delivery.pending(self.db)  # most rounds end here
            fanned = await webhook_delivery.fan_out(self.db, self.render) if work.outbox else 0
            if work.progress:
                fanned += await webhook_progress.fan_out_progress(self.db, self.render)
            free = self.settings.concurrency - len(self._in_flight)
            if free <= 0 or not (work.due or fanned):
                return False
            claimed = await webhook_delivery.claim(
                self.db, self.box, free, self.settings.lease_seconds
            )
        except DatabaseUnavailable as exc:
            log.warning("webhook delivery: %s", exc.detail)
            return False
        except Exception:
            log.exception("webhook delivery round failed")
            return False
        for outgoing in claimed:
            task = asyncio.create_task(self.deliver(sender, outgoing))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return bool(fanned or claimed)

    async def deliver(self, sender: SafeSender, outgoing: Outgoing) -> None:
        """Sign for this attempt (``webhook-timestamp`` is now), send, record."""
        delivery, started = outgoing.delivery, utcnow()
        stamp = int(started.timestamp())
        headers = webhooks.headers(outgoing.secrets, delivery.message_id, stamp, delivery.payload)
        body = delivery.payload.encode()
        sent = await sender.post(outgoing.url, body, headers, webhooks.EXCERPT_BYTES)
        if self.metrics is not None:
            self.metrics.count_webhook(_outcome(sent.ok, sent.status_code))
        try:
            await webhook_delivery.record(self.db, outgoing, sent, started, self.retry)
        except DatabaseUnavailable as exc:  # the lease lapses and the delivery is sent again
            log.warning("webhook delivery %s not recorded: %s", delivery.id, exc.detail)
        except Exception:
            log.exception("recording webhook delivery %s failed", delivery.id)


def _outcome(ok: bool, status_code: int | None) -> str:
    """A delivery attempt's ``wfrun_webhook_deliveries_total`` outcome."""
    if ok:
        return "delivered"
    return "unreachable" if not status_code else "rejected"
