"""Lanes as scheduling sees them: the capacity serving a lane now, the lanes that are full (a
claim passes them by, so a run waiting for capacity keeps its place without being claimed
over and over), and a queued run's ``queue_info`` — place, ETA and reason — read from the
same queue order the claims follow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from wfrun.db import instances as instances_db
from wfrun.db.database import Connection
from wfrun.db.instances import LoadedInstance
from wfrun.domain.lanes import parse_lane
from wfrun.domain.scheduling import INSTANCE_KINDS, Candidate, labels_match
from wfrun.domain.waits import LaneCapacity, estimate_wait_seconds, wait_reason
from wfrun.queue import lanes as queue_lanes
from wfrun.queue.execution_view import Waiting


@dataclass(frozen=True)
class QueueInfo:
    """``run/execution``'s ``queue_info``: the place, the ETA and why the run waits."""

    position: int
    estimated_wait_sec: int
    reason: str


class Load(Candidate, Protocol):
    """An instance as capacity counts it (``db.instances.LoadedInstance`` or
    ``queue.execution_view.InstanceLoad``): a scheduling candidate with its kind and state."""

    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def healthy(self) -> bool: ...


L = TypeVar("L", bound=Load)


def _fitting(instances: Sequence[L], lane: str) -> list[L]:
    """The instances of the lane's kind that carry its labels."""
    kind, labels = parse_lane(lane)
    return [i for i in instances if i.kind == kind and labels_match(labels, i.labels)]


def _usable(instances: Sequence[L]) -> list[L]:
    return [i for i in instances if i.state == "active" and i.healthy]


def instance_capacity(instances: Sequence[Load], lane: str) -> LaneCapacity:
    """The capacity of an instance lane: the instances of its kind that carry its labels."""
    fitting = _fitting(instances, lane)
    usable = _usable(fitting)
    return LaneCapacity(
        on_instances=True,
        registered=len(fitting),
        usable=len(usable),
        slots=sum(i.capacity for i in usable),
        busy=sum(min(i.busy, i.capacity) for i in usable),
    )


def _has_room(instances: Sequence[LoadedInstance], lane: str) -> bool:
    kind, labels = parse_lane(lane)
    return any(
        i.kind == kind
        and i.state == "active"
        and i.healthy
        and i.busy < i.capacity
        and labels_match(labels, i.labels)
        for i in instances
    )


async def full_lanes(conn: Connection, now: datetime) -> set[str]:
    """The instance lanes with waiting work and no instance that has room for it."""
    waiting = [
        lane
        for lane in await queue_lanes.waiting_lanes(conn, now)
        if parse_lane(lane)[0] in INSTANCE_KINDS
    ]
    if not waiting:
        return set()
    instances = await instances_db.list_instances(conn)
    return {lane for lane in waiting if not _has_room(instances, lane)}


def lane_capacity(waiting: Waiting) -> tuple[LaneCapacity, list[datetime]]:
    """The waiting run's lane's capacity, and when the runs occupying it started. The
    built-in engine's lane is served by worker slots: those of workers that heartbeated
    within three leases (``run_views.get_execution`` reads them so)."""
    if parse_lane(waiting.lane)[0] in INSTANCE_KINDS:
        capacity = instance_capacity(waiting.instances, waiting.lane)
        usable = _usable(_fitting(waiting.instances, waiting.lane))
        return capacity, [t for i in usable for t in i.started]
    slots, busy = waiting.worker_slots, waiting.worker_busy
    capacity = LaneCapacity(False, registered=slots, usable=slots, slots=slots, busy=busy)
    return capacity, list(waiting.busy_since)


def queue_info(waiting: Waiting, *, now: datetime, running_cap: int | None = None) -> QueueInfo:
    """Where a queued run stands. The reason names the account's running-run cap
    (``running_cap``, its override or the default) when it holds the run."""
    capacity, started = lane_capacity(waiting)
    elapsed = [max(int((now - t).total_seconds() * 1000), 0) for t in started]
    wait = estimate_wait_seconds(waiting.place, capacity.slots, elapsed, _typical_ms(waiting))
    capped = None
    if running_cap is not None and waiting.running is not None:
        capped = (waiting.running, running_cap) if waiting.running >= running_cap else None
    reason = wait_reason(waiting.lane, waiting.place, capacity, capped)
    return QueueInfo(waiting.place, wait, reason)


def _typical_ms(waiting: Waiting) -> int:
    """How long a run of this revision takes: the mean of its recent successes, else the
    package's estimate."""
    if waiting.measured_ms is not None:
        return waiting.measured_ms
    assert waiting.estimated_seconds is not None
    return int(waiting.estimated_seconds * 1000)
