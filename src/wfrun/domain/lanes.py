"""Queue lanes and the one queue order (pure).

A *lane* is the set of runs that compete for the same capacity: the same engine kind and the
same required instance labels. Every job stores its lane key, so claims, ``queue_position``
and the ETA read the same lane with one indexed comparison.

The order inside a lane (and, for worker slots, across lanes) is ``(fair_round, enqueue time,
job id)``; see :func:`fair_round` for why. Rounds are per lane: across lanes they only
compare where lanes compete for the same worker slots, and there a lane's new runs join its
own current round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


def lane_key(engine_kind: str, labels: Mapping[str, str] | None = None) -> str:
    """``comfyui`` or ``comfyui {"gpu":"a100"}``: the kind, then the labels as canonical
    JSON (sorted keys), so equal requirements give equal keys."""
    if not labels:
        return engine_kind
    return f"{engine_kind} {json.dumps(dict(labels), sort_keys=True, separators=(',', ':'))}"


def parse_lane(key: str) -> tuple[str, dict[str, str]]:
    """The engine kind and required labels of a lane key."""
    kind, _, labels = key.partition(" ")
    return kind, {str(k): str(v) for k, v in json.loads(labels or "{}").items()}


def describe_lane(key: str) -> str:
    """A lane in words: ``comfyui`` or ``comfyui with labels gpu=a100``."""
    kind, labels = parse_lane(key)
    if not labels:
        return kind
    return f"{kind} with labels {describe_labels(labels)}"


def describe_labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def fair_round(*, in_service: int | None, lane_head: int | None, account_last: int | None) -> int:
    """The round a new job of an account joins in its lane: round-robin by account, as
    start-time fair queueing with one run as the unit of work.

    Policy: a lane serves its waiting jobs by ``(round, enqueue time)``. The lane's current
    round is the highest round in service (``in_service``: its jobs being worked on), else the
    lowest still waiting (``lane_head``), else 0. An account's job joins the current round
    unless the account already has a job waiting or in service in the lane; then it joins the
    round after that one (``account_last + 1``). So every account gets one run per round: a
    burst of 20 from one account fills rounds r..r+19, and another account's single run joins
    the round in service, starting as soon as one slot frees, before the rest of the burst.
    Within a round, first come first served.

    Rounds are stored at enqueue and never change, so a deferral or a retry keeps its place.
    Why stored and not ranked at claim time: a rank recomputed over the *waiting* jobs forgets
    the runs an account already started, so the burst's next run would rank first again after
    every start.
    """
    current = in_service if in_service is not None else (lane_head or 0)
    if account_last is None:
        return current
    return max(current, account_last + 1)
