"""How a prompt ended, as its own events tell it, so that a prompt watched from its start needs
no ``GET /history`` once it is done (issue 11: that read was a third of what wfrun added
between ComfyUI finishing and the run showing ``succeeded``).

ComfyUI sends a prompt's events, in order over one connection, to the socket it was submitted
with: ``execution_start`` (with a ``timestamp``), ``executed`` for each node with UI output
(re-sent from the cache for a cached output node; its ``output`` is what history keeps under
``outputs[node]``), ``execution_success`` (``timestamp``) and last ``executing(null)``. When
all of them came on that socket the record holds what the history entry would: the outputs
and the two timestamps. Anything less — no start or success seen, a timestamp missing, an
``executed`` without a node or an output — and :meth:`EventRecord.outcome` is None: the
watch reads history as before (as it does for a prompt it attached to, or once its socket
was lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wfrun.engines.comfyui.events import ComfyEvent, HistoryOutcome, UiOutput, parse_ui_output


@dataclass
class EventRecord:
    """The outcome-bearing events of one prompt, as they arrive (:meth:`add`)."""

    started: int | None = None
    succeeded: int | None = None
    outputs: dict[str, UiOutput] = field(default_factory=dict)
    unreadable: bool = False
    """An ``executed`` event this record cannot stand in for history with."""

    def add(self, event: ComfyEvent) -> None:
        if event.type == "execution_start":  # a new execution of the prompt: start over
            self.started, self.succeeded, self.outputs = _stamp(event), None, {}
        elif event.type == "executed":
            node, output = event.data.get("node"), event.data.get("output")
            if isinstance(node, str) and isinstance(output, Mapping):
                self.outputs[node] = parse_ui_output(output)
            else:
                self.unreadable = True
        elif event.type == "execution_success":
            self.succeeded = _stamp(event)

    def outcome(self) -> HistoryOutcome | None:
        """The success the events tell in full (module doc), else None."""
        if self.unreadable or self.started is None or self.succeeded is None:
            return None
        outputs = {node: ui for node, ui in self.outputs.items() if not ui.is_empty()}
        duration = self.succeeded - self.started if self.succeeded >= self.started else None
        return HistoryOutcome("success", outputs, duration_ms=duration)


def _stamp(event: ComfyEvent) -> int | None:
    stamp = event.data.get("timestamp")
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None
