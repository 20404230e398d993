"""The instruments of one process and its registry (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from wfrun.metrics.database import DatabaseCollector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The Prometheus text format 0.0.4, which every Prometheus version scrapes."""

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DISPATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
ENGINE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Metrics:
    """One process's registry and instruments; built once by the composition root."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.database = DatabaseCollector()
        self.registry.register(self.database)
        self.scrape_lock = asyncio.Lock()  # one snapshot taken and rendered at a time
        self.http_requests = Counter(
            "wfrun_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "wfrun_http_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by method and route.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.dispatch_latency = Histogram(
            "wfrun_run_dispatch_latency_seconds",
            "From a run's submit (its commit) to its engine starting it, once per engine start.",
            ["engine"],
            buckets=DISPATCH_BUCKETS,
            registry=self.registry,
        )
        self.engine_duration = Histogram(
            "wfrun_engine_duration_seconds",
            "How long an engine ran one attempt, by engine and outcome (ok or error).",
            ["engine", "outcome"],
            buckets=ENGINE_BUCKETS,
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "wfrun_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered (2xx), rejected (another status), "
            "unreachable (no answer).",
            ["outcome"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def observe_dispatch(self, engine: str, seconds: float) -> None:
        self.dispatch_latency.labels(engine).observe(max(0.0, seconds))

    def observe_engine(self, engine: str, *, ok: bool, seconds: float) -> None:
        self.engine_duration.labels(engine, "ok" if ok else "error").observe(seconds)

    @contextlib.contextmanager
    def engine_attempt(self, engine: str, *, submitted: datetime, now: datetime) -> Iterator[None]:
        """Around an engine running one attempt: its dispatch latency (``now`` − the run's
        submit) at the start, its duration and outcome at the end."""
        self.observe_dispatch(engine, (now - submitted).total_seconds())
        started, ok = time.monotonic(), False
        try:
            yield
            ok = True
        finally:
            self.observe_engine(engine, ok=ok, seconds=time.monotonic() - started)

    def count_webhook(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome).inc()

    def render(self) -> bytes:
        """The registry in the text format (the database values as last taken)."""
        return generate_latest(self.registry)
