"""How ``wfrun-client run --wait`` shows a run as it goes.

On a terminal: one status line redrawn in place (queue place and ETA while queued, then a
bar with the percentage and the node), with log lines printed above it as they arrive.
Otherwise (a pipe, a CI log, ``--json``): one plain line per event, nothing redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TextIO

from wfrun_client.models import RunEvent

BAR_WIDTH = 24


def _percent(value: Any) -> str:
    return f"{float(value):.0f}%" if isinstance(value, int | float) else "?%"


def describe(event: RunEvent) -> str | None:
    """The plain line for one event (None: nothing worth a line)."""
    data = event.data
    if event.event == "status":
        return f"status {data.get('run_status')}"
    if event.event == "queue":
        eta = data.get("estimated_wait_sec")
        wait = "" if eta is None else f", ETA {float(eta):.0f}s"
        return f"queued: position {data.get('position')}{wait}"
    if event.event in ("progress", "log"):
        node = f" node {data['node_id']}" if data.get("node_id") else ""
        percent = f" {_percent(data['progress_percent'])}" if event.event == "progress" else ""
        return f"{event.event}{percent}{node}: {data.get('message') or data.get('event_type')}"
    if event.event == "done":
        return f"done: {data.get('run_status')}"
    return None


@dataclass
class Display:
    """The ``on_event`` of ``runs.wait`` for the CLI."""

    out: TextIO
    live: bool
    status: str = "running"
    """Until the first status event: a run not queued at the first look is running."""
    queue: str = ""
    percent: float | None = None
    node: str | None = None
    _drawn: bool = field(default=False, repr=False)

    def __call__(self, event: RunEvent) -> None:
        if not self.live:
            line = describe(event)
            if line is not None:
                print(line, file=self.out, flush=True)
            return
        self._update(event)
        if event.event == "log" or (event.event == "progress" and event.data.get("message")):
            self._above(describe(event) or "")
        self._draw()

    def _update(self, event: RunEvent) -> None:
        data = event.data
        if event.event == "status":
            self.status = str(data.get("run_status"))
            self.percent = 100.0 if self.status == "succeeded" else self.percent
        elif event.event == "queue":
            eta = data.get("estimated_wait_sec")
            self.queue = f" #{data.get('position')}" + ("" if eta is None else f" ETA {eta:.0f}s")
        elif event.event == "progress":
            self.percent = data.get("progress_percent")
            self.node = data.get("node_id") or self.node

    def line(self) -> str:
        """The status line as it is drawn."""
        if self.status == "queued":
            return f"queued{self.queue}"
        done = min(max(self.percent or 0.0, 0.0), 100.0)
        filled = round(BAR_WIDTH * done / 100)
        bar = "█" * filled + "·" * (BAR_WIDTH - filled)
        node = f" node {self.node}" if self.node else ""
        return f"{self.status:<9} {bar} {done:3.0f}%{node}"

    def _above(self, text: str) -> None:
        self.out.write("\r\x1b[2K" + text + "\n")
        self._drawn = False

    def _draw(self) -> None:
        self.out.write("\r\x1b[2K" + self.line())
        self.out.flush()
        self._drawn = True

    def close(self) -> None:
        """Ends the redrawn line so what follows starts on a fresh one."""
        if self.live and self._drawn:
            self.out.write("\n")
            self.out.flush()
