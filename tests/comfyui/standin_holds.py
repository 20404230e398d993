"""What the ComfyUI stand-in lets a test control instead of racing it: the clock its events are
stamped with, and holds that keep a prompt pending or running until the test releases it.

- :class:`StandinClock` gives the ``timestamp`` of ``execution_start`` / ``execution_success``
  (and the other prompt-level events). It follows the wall clock until a test :meth:`stops
  <StandinClock.stop>` it; from then on it moves only when the test :meth:`advances
  <StandinClock.advance>` it, so the engine time ComfyUI reports (success − start) is exact.
- :class:`Holds` (server loop only): ``pending`` keeps every queued prompt in the queue (none
  starts); ``running`` stops a prompt that starts just before it runs the held node (after
  ``executing`` for that node was sent), until the test releases it or ``/interrupt`` stops it
  (then the prompt ends interrupted, as ComfyUI's nodes do at their next interrupt check).
  A whole-prompt cache hit runs no node and is never held.
"""

from __future__ import annotations

import asyncio
import threading
import time

from wfrun.engines.local.executor import Interrupted


class StandinClock:
    """Milliseconds since the epoch, on the wall clock or stopped under the test's control."""

    def __init__(self) -> None:
        self._stopped_at: int | None = None
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            if self._stopped_at is not None:
                return self._stopped_at
        return int(time.time() * 1000)

    def stop(self, at_ms: int = 1_767_225_600_000) -> None:
        """From now on the clock reads ``at_ms`` until advanced."""
        with self._lock:
            self._stopped_at = at_ms

    def advance(self, milliseconds: int) -> None:
        """Moves a stopped clock forward."""
        with self._lock:
            if self._stopped_at is None:
                raise RuntimeError("advance() needs a stopped clock (call stop() first)")
            self._stopped_at += milliseconds


class Holds:
    """Where the stand-in's prompt worker waits for the test (state of the server loop)."""

    def __init__(self) -> None:
        self.pending = False
        """While True, queued prompts stay queued: nothing starts."""
        self.running = False
        """While True, a starting prompt stops before :attr:`node` (its first node if None)."""
        self.node: str | None = None
        self.held: str | None = None
        """The prompt id stopped at the moment (None when none is)."""
        self._changed = asyncio.Event()

    def hold(self, *, pending: bool, running: bool, node: str | None) -> None:
        self.pending, self.running, self.node = pending, running, node

    def release(self) -> None:
        """Lets everything go: queued prompts start, a stopped prompt goes on."""
        self.pending = self.running = False
        self.wake()

    def wake(self) -> None:
        """Something a waiter looks at changed (a release, an interrupt)."""
        self._changed.set()

    def _holds(self, node_id: str, index: int) -> bool:
        if not self.running:
            return False
        return index == 0 if self.node is None else node_id == self.node

    async def stop_at(
        self, prompt_id: str, node_id: str, index: int, interrupt: threading.Event
    ) -> None:
        """Called before a node runs: waits while it is held; raises ``Interrupted`` when
        ``/interrupt`` stopped the prompt meanwhile."""
        if not self._holds(node_id, index):
            return
        self.held = prompt_id
        try:
            while self.running and not interrupt.is_set():
                self._changed.clear()
                await self._changed.wait()
        finally:
            self.held = None
        if interrupt.is_set():
            raise Interrupted()
