"""Prometheus metrics of one process (``/metrics``; docs/operating.md lists them).

:class:`Metrics` owns the process's own ``CollectorRegistry`` (never prometheus-client's global
one, so several apps or runtimes in one process, as in the tests, do not collide): the
instruments observed where things happen (HTTP requests, dispatch latency, engine durations,
webhook attempts) and a :class:`~wfrun.metrics.database.DatabaseCollector` whose values come
from aggregate queries taken at scrape time (``services.metrics_snapshot``).
"""

from __future__ import annotations

from wfrun.metrics.instruments import CONTENT_TYPE, Metrics

__all__ = ["CONTENT_TYPE", "Metrics"]
