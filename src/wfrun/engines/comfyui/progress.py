"""Turns a prompt's WebSocket events into ``ProgressSink`` calls.

Protocol facts relied on (ComfyUI 0.3.64, §5.4 of the reference): for each node the server
sends ``progress_state`` (running), ``executing(node)``, [``progress``...],
``progress_state`` (finished) and, for nodes with UI output, ``executed``. Cached nodes get
no ``executing``: they are only listed in ``execution_cached`` (and a cached output node
re-sends ``executed``). Nodes without UI output get no ``executed``, so a node is taken as
finished by the first of: a ``progress_state`` saying ``finished``, its ``executed``, the
next ``executing``, or the end of the prompt.

Counting follows the local engine: ``node_started(index)`` and ``node_finished(index)``
get ``index`` = number of nodes finished before this one, ``total`` = nodes that will run.
Cached nodes are reported finished (without a start). ``progress`` messages (``value`` of
``max`` for the running node, e.g. sampler steps, TestSleep seconds) are passed on as progress
within that node (``report_node_progress``), so a long node moves the run's percentage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wfrun.engines.base import ProgressSink, report_node_progress
from wfrun.engines.comfyui.events import ComfyEvent
from wfrun.engines.comfyui.graph import class_of


class ProgressTracker:
    """Progress of one prompt, reported to a sink exactly once per node."""

    def __init__(self, graph: Mapping[str, Any], run_order: Sequence[str], sink: ProgressSink):
        """Creates the tracker.

        Args:
            graph: The submitted graph (for class names).
            run_order: Nodes that will run, dependencies first.
            sink: Where progress goes.
        """
        self._graph = graph
        self._order = tuple(run_order)
        self._members = frozenset(self._order)
        self._sink = sink
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self._current: str | None = None

    @property
    def total(self) -> int:
        """Number of nodes that will run."""
        return len(self._order)

    async def on_event(self, event: ComfyEvent) -> None:
        """Reports what ``event`` tells about node progress (other events are ignored)."""
        if event.type == "execution_cached":
            for node_id in event.cached_nodes():
                await self._finish(node_id, cached=True)
        elif event.type == "executing":
            await self._on_executing(event.node)
        elif event.type == "progress_state":
            for node_id in event.finished_nodes():
                await self._finish(node_id)
        elif event.type == "executed" and event.node is not None:
            await self._finish(event.node)
        elif event.type == "execution_success" and self._current is not None:
            await self._finish(self._current)
        elif event.type == "progress":
            await self._on_progress(event)

    async def complete(self) -> None:
        """The prompt succeeded: reports every node not yet finished, in run order.

        Used when events were missed (socket lost, or attached to a running prompt).
        """
        for node_id in self._order:
            await self._finish(node_id)

    async def _on_executing(self, node_id: str | None) -> None:
        if self._current is not None and self._current != node_id:
            await self._finish(self._current)
        if node_id is None or node_id not in self._members or node_id in self._started:
            return
        self._started.add(node_id)
        self._current = node_id
        index = len(self._finished)
        await self._sink.node_started(node_id, class_of(self._graph, node_id), index, self.total)

    async def _on_progress(self, event: ComfyEvent) -> None:
        node_id, value, maximum = event.node, event.data.get("value"), event.data.get("max")
        if node_id is None or node_id not in self._started or node_id in self._finished:
            return
        if not isinstance(value, int | float) or not isinstance(maximum, int | float):
            return
        class_type = class_of(self._graph, node_id)
        index = len(self._finished)
        await report_node_progress(
            self._sink, node_id, class_type, index, self.total, value, maximum
        )

    async def _finish(self, node_id: str, *, cached: bool = False) -> None:
        if node_id not in self._members or node_id in self._finished:
            return
        class_type = class_of(self._graph, node_id)
        index = len(self._finished)
        if node_id not in self._started and not cached:
            self._started.add(node_id)
            await self._sink.node_started(node_id, class_type, index, self.total)
        self._finished.add(node_id)
        if self._current == node_id:
            self._current = None
        await self._sink.node_finished(node_id, class_type, index, self.total)
