"""State shared by the nodes of one run of the local engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfrun.engines.local.errors import Interrupted
from wfrun.engines.local.outputs import NodeOutput

POLL_SECONDS = 0.02
"""Longest a sleeping node waits before checking the abort flag again."""


@dataclass
class NodeContext:
    """What a node's run function may use besides its inputs.

    Attributes:
        prompt_json: The graph as JSON, embedded into saved PNGs.
        load_image: Returns the bytes of an input image file by name.
        interrupt: The caller's interrupt flag.
        abort: Set by the engine when the run is abandoned (e.g. the task was cancelled).
        counters: Next file counter per filename prefix (shared by the whole run).
        on_progress: Where the running node reports ``(value, maximum)``; set by the
            executor around each node (called from the node's worker thread).
    """

    prompt_json: str
    load_image: Callable[[str], bytes]
    interrupt: threading.Event
    abort: threading.Event = field(default_factory=threading.Event)
    counters: dict[str, int] = field(default_factory=dict)
    on_progress: Callable[[float, float], None] | None = None

    def stop_requested(self) -> bool:
        """Tells whether the run should stop.

        Returns:
            True when interrupted or aborted.
        """
        return self.interrupt.is_set() or self.abort.is_set()

    def raise_if_interrupted(self) -> None:
        """Raises ``Interrupted`` when the run should stop.

        Raises:
            Interrupted: When interrupted or aborted.
        """
        if self.stop_requested():
            raise Interrupted()

    def report_progress(self, value: float, maximum: float) -> None:
        """Reports how far the running node is (like ComfyUI's ``ProgressBar``)."""
        if self.on_progress is not None:
            self.on_progress(value, maximum)

    def sleep(self, seconds: float) -> None:
        """Sleeps, waking at once on interrupt and at least every ``POLL_SECONDS``; reports
        the seconds slept so far as progress (ComfyUI's TestSleep does the same).

        Args:
            seconds: How long to sleep.

        Raises:
            Interrupted: When interrupted or aborted during the sleep.
        """
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.report_progress(seconds - remaining, seconds)
            self.interrupt.wait(min(remaining, POLL_SECONDS))
            self.raise_if_interrupted()

    def next_counter(self, prefix: str) -> int:
        """Returns the next file counter for a filename prefix, starting at 1.

        Args:
            prefix: The filename prefix.

        Returns:
            The counter to use.
        """
        counter = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = counter
        return counter


@dataclass(frozen=True)
class NodeResult:
    """What a node's run function returns.

    Attributes:
        values: One value per declared output.
        ui: What an output node shows (images, text), if anything.
    """

    values: tuple[Any, ...] = ()
    ui: NodeOutput | None = None
