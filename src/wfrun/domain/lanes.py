"""Queue lanes and the one queue order (pure).

A *lane* is the set of runs that compete for the same capacity: the same engine kind and the
same required instance labels. Every job stores its lane key, so claims, ``queue_position``
and the ETA read the same lane with one indexed comparison.

The order inside a lane (and, for worker slots, across lanes) is ``(fair_round, enqueue time,
job id)``; see :func:`fair_round` for why.
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


def fair_round(*, lane_head: int | None, account_last: int | None) -> int:
    """The round a new job of an account joins in its lane: round-robin by account.

    Policy: a lane serves its waiting jobs by ``(round, enqueue time)``. An account's first
    waiting job joins the round the lane is serving now (``lane_head``: the lowest round still
    waiting), each further job of the same account the round after its previous one
    (``account_last + 1``). So within one lane every account gets one run per round: a burst
    of 20 from one account fills rounds r..r+19, and another account's single run joins round
    r, starting after at most one run of each account ahead of it in that round (plus the runs
    already running) instead of after the whole burst. Within a round, first come first
    served. Rounds are stored at enqueue and never change (a deferral or retry keeps its
    place); why stored, not ranked at claim time: a rank recomputed over the *waiting* jobs
    forgets the runs an account already started, so a burst would be first again after each
    start.
    """
    if account_last is not None:
        return max(account_last + 1, lane_head or 0)
    return lane_head or 0
