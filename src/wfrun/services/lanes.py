"""Lanes as scheduling sees them: the capacity serving a lane now, the lanes that are full (a
claim passes them by, so a run waiting for capacity keeps its place without being claimed
over and over), and a queued run's ``queue_info`` — place, ETA and reason — read from the
same queue order the claims follow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from wfrun.db import instances as instances_db
from wfrun.db import runs as runs_db
from wfrun.db import workflows as workflows_db
from wfrun.db.database import Connection
from wfrun.db.instances import LoadedInstance
from wfrun.db.runs import Run
from wfrun.domain.lanes import parse_lane
from wfrun.domain.scheduling import INSTANCE_KINDS, labels_match
from wfrun.domain.waits import LaneCapacity, estimate_wait_seconds, wait_reason
from wfrun.queue import broker, quotas
from wfrun.queue import lanes as queue_lanes

RECENT_RUNS = 20
"""Runs of a revision whose mean execution time predicts the next one's."""


@dataclass(frozen=True)
class QueueInfo:
    """``run/execution``'s ``queue_info``: the place, the ETA and why the run waits."""

    position: int
    estimated_wait_sec: int
    reason: str


def instance_capacity(instances: Sequence[LoadedInstance], lane: str) -> LaneCapacity:
    """The capacity of an instance lane: the instances of its kind that carry its labels."""
    kind, labels = parse_lane(lane)
    fitting = [i for i in instances if i.kind == kind and labels_match(labels, i.labels)]
    usable = [i for i in fitting if i.state == "active" and i.healthy]
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


async def lane_capacity(
    conn: Connection, lane: str, *, now: datetime, lease_seconds: float
) -> tuple[LaneCapacity, list[datetime]]:
    """A lane's capacity, and when the runs occupying it started. The built-in engine's lane
    is served by worker slots: those of workers that heartbeated within three leases."""
    if parse_lane(lane)[0] in INSTANCE_KINDS:
        instances = await instances_db.list_instances(conn)
        capacity = instance_capacity(instances, lane)
        kind, labels = parse_lane(lane)
        usable = [
            i.id
            for i in instances
            if i.kind == kind and i.state == "active" and i.healthy
            if labels_match(labels, i.labels)
        ]
        return capacity, await runs_db.running_since(conn, usable)
    since = now - timedelta(seconds=3 * lease_seconds)
    slots = await broker.live_capacity(conn, since=since)
    busy = await broker.busy_count(conn, now=now)
    capacity = LaneCapacity(False, registered=slots, usable=slots, slots=slots, busy=busy)
    return capacity, await queue_lanes.busy_since(conn, now)


async def queue_info(
    conn: Connection,
    run: Run,
    *,
    now: datetime,
    lease_seconds: float,
    running_cap: int | None = None,
) -> QueueInfo | None:
    """Where a queued run stands, or None when it has no waiting job. The reason names the
    account's running-run cap (``running_cap``, its override or the default) when it holds
    the run."""
    place = await queue_lanes.queue_place(conn, run.id)
    if place is None:
        return None
    capacity, started = await lane_capacity(conn, place.lane, now=now, lease_seconds=lease_seconds)
    elapsed = [max(int((now - t).total_seconds() * 1000), 0) for t in started]
    average_ms = await _typical_ms(conn, run)
    wait = estimate_wait_seconds(place.place, capacity.slots, elapsed, average_ms)
    capped = None
    if running_cap is not None:  # no statement for an account without a cap
        running = await quotas.running_count(conn, run.account_id)
        capped = (running, running_cap) if running >= running_cap else None
    return QueueInfo(place.place, wait, wait_reason(place.lane, place.place, capacity, capped))


async def _typical_ms(conn: Connection, run: Run) -> int:
    """How long a run of this revision takes: the mean of its recent successes, else the
    package's estimate."""
    measured = await runs_db.recent_average_ms(conn, run.revision_id, sample=RECENT_RUNS)
    if measured is not None:
        return measured
    revision = await workflows_db.find_revision(conn, run.revision_id)
    assert revision is not None
    return int(revision.prices["estimated_seconds"] * 1000)
