"""Why a queued run waits and how long it will (pure): ``run/execution``'s ``queue_info``."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from wfrun.domain.lanes import describe_labels, parse_lane


@dataclass(frozen=True)
class LaneCapacity:
    """What can serve a lane now. For an instance lane: the registered instances of its kind
    carrying its labels (``registered``), those active and healthy (``usable``), their slots
    and the runs on them (``busy``). For a worker lane (the built-in engine): the live worker
    processes' slots (``registered`` = ``usable`` = live workers)."""

    on_instances: bool
    registered: int
    usable: int
    slots: int
    busy: int


def no_capacity_reason(lane: str, capacity: LaneCapacity) -> str | None:
    """Why nothing in ``lane`` can start at all (no instance, none healthy, no worker), or
    None when something could serve it."""
    kind, labels = parse_lane(lane)
    if not capacity.on_instances:
        return "no worker is running" if capacity.usable == 0 else None
    with_labels = f" with labels {describe_labels(labels)}" if labels else ""
    if capacity.registered == 0:
        return f"no {kind} instance{with_labels} is registered"
    if capacity.usable == 0:
        return (
            f"no healthy {kind} instance{with_labels}: 0 of {capacity.registered} healthy "
            "and active"
        )
    return None


def wait_reason(
    lane: str, place: int, capacity: LaneCapacity, running_cap: tuple[int, int] | None = None
) -> str:
    """Why the run at 1-based ``place`` in ``lane`` has not started, in words.
    ``running_cap`` is ``(running, cap)`` when the run's account is at its running-run cap
    (its runs wait for one of its own to end, whatever the lane's capacity)."""
    blocked = no_capacity_reason(lane, capacity)
    if blocked is not None:
        return blocked
    kind, labels = parse_lane(lane)
    name = f"{kind} ({describe_labels(labels)})" if labels else kind
    ahead = place - 1
    runs_ahead = f"{ahead} run{'s' if ahead > 1 else ''} ahead in lane {name}"
    if running_cap is not None:
        running, cap = running_cap
        capped = f"the account is at its running-runs limit ({running} of {cap} running)"
        return f"{capped}; {runs_ahead}" if ahead else capped
    if ahead:
        return runs_ahead
    if capacity.busy >= capacity.slots:
        what = "instance" if capacity.on_instances else "worker"
        return f"next in lane {name}; all {capacity.slots} {what} slots are busy"
    return f"next in lane {name}; starting"


def estimate_wait_seconds(
    place: int, slots: int, running_elapsed_ms: Sequence[int], average_ms: int
) -> int:
    """Seconds until the run at 1-based ``place`` starts: the lane's ``slots`` (at least one
    is assumed), each busy one free once its run reaches ``average_ms`` (given how long it has
    run), then every run ahead takes ``average_ms`` on the first slot to free."""
    free_at = sorted(max(average_ms - e, 0) for e in running_elapsed_ms)[: max(slots, 1)]
    free_at += [0] * (max(slots, 1) - len(free_at))
    heapq.heapify(free_at)
    for _ in range(place - 1):
        heapq.heappush(free_at, heapq.heappop(free_at) + average_ms)
    return math.ceil(free_at[0] / 1000)
