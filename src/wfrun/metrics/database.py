"""Metrics read from the database at scrape time.

Prometheus collectors are synchronous and this process's database is asynchronous, so a scrape
is two steps: ``services.metrics_snapshot.scrape`` takes a :class:`Snapshot` with a few
aggregate queries (on the event loop, under a time limit), hands it to
:meth:`DatabaseCollector.update`, then renders; :meth:`DatabaseCollector.collect` only reads
the snapshot it was given, so rendering never touches the database or blocks the loop.

A process that never takes snapshots (a standalone worker's ``--metrics-port``) exposes none
of these: they are the same in every process, and the API serves them once.

Money gauges are CNY as floats, derived from integer minor units (1e-8 CNY) by dividing by
1e8: exact up to about 90 million CNY, for dashboards only (the ledger stays the truth).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from wfrun.db.metrics_queries import InstanceLoad, LaneDepth, MoneyTotals, RunCount

MINOR_UNITS_PER_CNY = 100_000_000


@dataclass(frozen=True)
class Snapshot:
    """The database-derived values at ``taken_at``."""

    runs: list[RunCount]
    lanes: list[LaneDepth]
    instances: list[InstanceLoad]
    money: MoneyTotals
    taken_at: datetime


@dataclass(frozen=True)
class _Scrape:
    snapshot: Snapshot | None
    seconds: float


class DatabaseCollector:
    """Yields the last snapshot's values; nothing before the first scrape."""

    def __init__(self) -> None:
        self._last: _Scrape | None = None

    def update(self, snapshot: Snapshot, seconds: float) -> None:
        self._last = _Scrape(snapshot, seconds)

    def unavailable(self, seconds: float) -> None:
        """The database did not answer this scrape: only ``wfrun_metrics_database_up 0``."""
        self._last = _Scrape(None, seconds)

    def collect(self) -> Iterator[Metric]:
        last = self._last
        if last is None:
            return
        yield GaugeMetricFamily(
            "wfrun_metrics_database_up",
            "1 when this scrape's database queries answered, else 0.",
            value=0 if last.snapshot is None else 1,
        )
        yield GaugeMetricFamily(
            "wfrun_metrics_database_seconds",
            "How long this scrape's database queries took.",
            value=last.seconds,
        )
        if last.snapshot is not None:
            yield from _runs(last.snapshot.runs)
            yield from _lanes(last.snapshot.lanes, last.snapshot.taken_at)
            yield from _instances(last.snapshot.instances)
            yield from _money(last.snapshot.money)


def _runs(counts: list[RunCount]) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "wfrun_runs", "Runs by status and engine kind (all runs ever).", labels=["status", "engine"]
    )
    for count in counts:
        family.add_metric([count.status, count.engine], count.count)
    yield family


def _lanes(lanes: list[LaneDepth], now: datetime) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "wfrun_queue_depth", "Jobs waiting to be claimed, per lane.", labels=["lane"]
    )
    age = GaugeMetricFamily(
        "wfrun_queue_oldest_age_seconds",
        "Age of the lane's oldest waiting job (since its submit).",
        labels=["lane"],
    )
    for lane in lanes:
        depth.add_metric([lane.lane], lane.depth)
        age.add_metric([lane.lane], max(0.0, (now - lane.oldest_created_at).total_seconds()))
    yield depth
    yield age


def _instances(instances: list[InstanceLoad]) -> Iterator[Metric]:
    labels = ["instance", "kind"]
    healthy = GaugeMetricFamily(
        "wfrun_instance_healthy", "1 when the instance's last probe passed.", labels=labels
    )
    in_flight = GaugeMetricFamily(
        "wfrun_instance_in_flight", "Runs running on the instance now.", labels=labels
    )
    capacity = GaugeMetricFamily(
        "wfrun_instance_capacity", "Runs the instance takes at once.", labels=labels
    )
    for instance in instances:
        key = [instance.id, instance.kind]
        healthy.add_metric(key, 1 if instance.healthy else 0)
        in_flight.add_metric(key, instance.in_flight)
        capacity.add_metric(key, instance.capacity)
    yield from (healthy, in_flight, capacity)


def _money(money: MoneyTotals) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "wfrun_money_frozen_cny",
        "CNY held by open freezes (integer minor units / 1e8).",
        value=money.frozen / MINOR_UNITS_PER_CNY,
    )
    yield GaugeMetricFamily(
        "wfrun_money_settled_cny",
        "CNY charged by settled runs, net of compensations (revenue postings / 1e8).",
        value=money.settled / MINOR_UNITS_PER_CNY,
    )
