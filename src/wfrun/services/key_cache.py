"""A short in-process cache of API key lookups, so an authenticated request pays no database
round trip of its own for its key (issue 17).

Why a cache and not the request's own transaction: every route would have to thread the
key's lookup into whichever service transaction it opens (and a handful open none, or
several); a cache removes the trip from all of them at once, with a bound on staleness that
is stated and tested rather than implied.

The rules that keep it correct:

- Only found keys are cached; an unknown or revoked key is looked up every time (a key just
  created works at once).
- An entry lives at most :data:`TTL_SECONDS` (1 s) from the moment its lookup *started*, so a
  key revoked by another process (another API replica, the CLI) stops working within 1 s.
- A revocation in this process clears the cache before its transaction returns, and a lookup
  that was in flight across a revocation is not cached (a generation counter), so here a
  revoked key stops working immediately.
- At most :data:`MAX_ENTRIES` keys, least recently used evicted first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

TTL_SECONDS = 1.0
MAX_ENTRIES = 10_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    value: T
    expires: float


class KeyCache(Generic[T]):
    """Found keys by ``(database url, key hash)``; see the module docstring."""

    def __init__(
        self,
        *,
        ttl: float = TTL_SECONDS,
        size: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[tuple[str, str], _Entry[T]] = OrderedDict()
        self._generation = 0

    def get(self, key: tuple[str, str]) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.value

    def begin_lookup(self) -> tuple[int, float]:
        """A token to pass to :meth:`put` once the lookup that starts now has found the key."""
        return self._generation, self._clock()

    def put(self, key: tuple[str, str], value: T, token: tuple[int, float]) -> None:
        generation, started = token
        if generation != self._generation:  # a revocation happened meanwhile
            return
        self._entries[key] = _Entry(value, started + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every key (a key was revoked in this process)."""
        self._generation += 1
        self._entries.clear()
