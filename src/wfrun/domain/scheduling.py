"""Choosing an engine instance for a run (pure).

An instance qualifies when it carries every label the revision requires (``key=value`` pairs)
and has a free slot (``busy < capacity``); among those the least loaded wins, ties by id.
A run being re-dispatched keeps its previous instance while that instance is still schedulable,
so the new attempt can attach to the prompt already there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

INSTANCE_KINDS = frozenset({"comfyui"})
"""Engine kinds that run on registered instances (and are scheduled onto them)."""


class Candidate(Protocol):
    """An instance as scheduling sees it: its labels, capacity and current load."""

    @property
    def id(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, Any]: ...

    @property
    def capacity(self) -> int: ...

    @property
    def busy(self) -> int: ...


C = TypeVar("C", bound=Candidate)


def labels_match(required: Mapping[str, str], labels: Mapping[str, Any]) -> bool:
    return all(str(labels.get(key)) == str(value) for key, value in required.items())


def choose_instance(
    candidates: Sequence[C], required: Mapping[str, str], *, previous: str | None = None
) -> C | None:
    """The instance to dispatch to, or None when none qualifies now."""
    fitting = [c for c in candidates if labels_match(required, c.labels)]
    for candidate in fitting:
        if candidate.id == previous:
            return candidate
    free = [c for c in fitting if c.busy < c.capacity]
    if not free:
        return None
    return min(free, key=lambda c: (c.busy / c.capacity, c.id))
