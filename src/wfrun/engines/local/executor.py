"""Runs validated ComfyUI API-format graphs on the CPU.

``execute_graph`` validates the graph, then runs its nodes one at a time in
execution order. Each node's work runs in a worker thread so the event loop is
never blocked; the hooks are awaited on the loop before and after each node.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from wfrun.engines.local.context import NodeContext, NodeResult
from wfrun.engines.local.errors import GraphInvalid, GraphProblem, Interrupted, NodeFailed
from wfrun.engines.local.outputs import NodeOutput, OutputFile
from wfrun.engines.local.validation import (
    Link,
    Plan,
    PlannedNode,
    check_linked_value,
    plan_graph,
    validate_graph,
)

__all__ = [
    "ExecutionHooks",
    "GraphInvalid",
    "GraphProblem",
    "Interrupted",
    "NodeFailed",
    "NodeOutput",
    "OutputFile",
    "ProgressHooks",
    "execute_graph",
    "validate_graph",
]


class ExecutionHooks(Protocol):
    """Progress callbacks; ``index`` is 0-based and ``total`` the number of nodes to run.

    An exception raised by a hook propagates unchanged out of ``execute_graph``.
    """

    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        """Called before a node runs."""

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        """Called after a node ran successfully."""


class ProgressHooks(ExecutionHooks, Protocol):
    """Hooks that also take progress within a node: ``value`` of ``maximum`` (the latest
    reading only: readings that arrive while the hook is busy are coalesced)."""

    async def node_progress(
        self, node_id: str, class_type: str, index: int, total: int, value: float, maximum: float
    ) -> None:
        """Called while a node runs, when it reported progress."""


async def execute_graph(
    graph: Mapping[str, Any],
    *,
    load_image: Callable[[str], bytes],
    hooks: ExecutionHooks,
    interrupt: threading.Event,
) -> dict[str, NodeOutput]:
    """Validates and runs a graph.

    Args:
        graph: ComfyUI API-format graph.
        load_image: Returns an input file's bytes by name (LoadImage; in a worker thread);
            may raise ``FileNotFoundError`` or ``KeyError`` for unknown names.
        hooks: Progress callbacks.
        interrupt: Checked before every node (and while TestSleep sleeps).

    Returns:
        What each output node produced, by node id (only those with images or text).

    Raises:
        GraphInvalid: The graph is invalid; no node ran.
        NodeFailed: A node raised.
        Interrupted: ``interrupt`` was set.
    """
    plan = plan_graph(graph)
    ctx = NodeContext(_prompt_json(graph), load_image, interrupt)
    values = _Values(plan)
    results: dict[str, NodeOutput] = {}
    try:
        for index, node_id in enumerate(plan.order):
            node = plan.nodes[node_id]
            result = await _run_step(node, index, len(plan.order), values, ctx, hooks)
            if node.spec.output_node and result.ui is not None and not result.ui.is_empty():
                results[node_id] = result.ui
    except Interrupted as exc:
        exc.finished = dict(results)
        raise
    finally:
        ctx.abort.set()  # stops a node still running in its thread after cancellation
    return results


async def _run_step(
    node: PlannedNode,
    index: int,
    total: int,
    values: _Values,
    ctx: NodeContext,
    hooks: ExecutionHooks,
) -> NodeResult:
    """Runs one node between its hooks, after checking the interrupt flag."""
    if ctx.interrupt.is_set():
        raise Interrupted()
    class_type = node.spec.class_type
    await hooks.node_started(node.node_id, class_type, index, total)
    work = asyncio.to_thread(_run_node, node, values.arguments(node), ctx)
    progress = getattr(hooks, "node_progress", None)  # optional: see ProgressHooks
    if progress is None:
        result = await work
    else:
        report = functools.partial(progress, node.node_id, class_type, index, total)
        result = await _relay_progress(work, report, ctx)
    values.store(node, result)
    await hooks.node_finished(node.node_id, class_type, index, total)
    return result


async def _relay_progress(
    work: Coroutine[Any, Any, NodeResult],
    report: Callable[[float, float], Awaitable[None]],
    ctx: NodeContext,
) -> NodeResult:
    """Awaits the node's thread, passing its progress readings to the hooks on the loop."""
    relay = _Relay(asyncio.get_running_loop())
    ctx.on_progress = relay.report
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            waiting: set[asyncio.Future[Any]] = {task, relay.next_reading()}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            reading = relay.take()
            if reading is not None and not task.done():
                await report(*reading)
        return task.result()
    finally:
        ctx.on_progress = None
        relay.close()
        task.cancel()  # a no-op once done; else the node is abandoned (ctx.abort stops it)


class _Relay:
    """The latest progress reading of a node's thread, handed over to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._latest: tuple[float, float] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def report(self, value: float, maximum: float) -> None:
        """From the node's thread."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
            self._loop.call_soon_threadsafe(self._set, (value, maximum))

    def next_reading(self) -> asyncio.Future[None]:
        """A future done once a reading is waiting (at once if one already is)."""
        if self._waiter is None or self._waiter.done():
            self._waiter = self._loop.create_future()
        if self._latest is not None:
            self._waiter.set_result(None)
        return self._waiter

    def take(self) -> tuple[float, float] | None:
        reading, self._latest = self._latest, None
        return reading

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()

    def _set(self, reading: tuple[float, float]) -> None:
        self._latest = reading
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _run_node(node: PlannedNode, arguments: dict[str, Any], ctx: NodeContext) -> NodeResult:
    """Runs one node in a worker thread, turning its errors into ``NodeFailed``."""
    try:
        checked = _check_arguments(node, arguments)
        return node.spec.run(ctx, checked)
    except (Interrupted, NodeFailed):
        raise
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        raise NodeFailed(node.node_id, node.spec.class_type, message) from exc


def _check_arguments(node: PlannedNode, arguments: dict[str, Any]) -> dict[str, Any]:
    checked = dict(arguments)
    for inp in node.spec.inputs:
        if isinstance(node.inputs[inp.name], Link):
            checked[inp.name] = check_linked_value(inp, arguments[inp.name])
    return checked


class _Values:
    """Node outputs of a run, dropped once every consumer has run."""

    def __init__(self, plan: Plan) -> None:
        self._outputs: dict[str, tuple[Any, ...]] = {}
        self._consumers: Counter[str] = Counter(
            link.node_id for node in plan.nodes.values() for link in node.links()
        )

    def arguments(self, node: PlannedNode) -> dict[str, Any]:
        """Returns the node's inputs with links replaced by upstream outputs."""
        return {
            name: self._outputs[value.node_id][value.index] if isinstance(value, Link) else value
            for name, value in node.inputs.items()
        }

    def store(self, node: PlannedNode, result: NodeResult) -> None:
        """Keeps the node's outputs if needed and releases those it consumed."""
        if self._consumers[node.node_id] > 0:
            self._outputs[node.node_id] = result.values
        for link in node.links():
            self._consumers[link.node_id] -= 1
            if self._consumers[link.node_id] == 0:
                self._outputs.pop(link.node_id, None)


def _prompt_json(graph: Mapping[str, Any]) -> str:
    def fallback(value: Any) -> Any:
        return dict(value) if isinstance(value, Mapping) else str(value)

    return json.dumps(graph if isinstance(graph, dict) else dict(graph), default=fallback)
