"""Validation of ComfyUI API-format graphs for the local engine.

Follows ComfyUI's ``validate_prompt``: every node must name a known class, there
must be an output node, and the nodes reachable backwards from the output nodes
have their inputs checked (literals coerced with ``int``/``float``/``str``/``bool``
and range-checked, combos checked against their choices, links checked for a
known source, a valid output index and a compatible type).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from wfrun.engines.local.errors import GraphInvalid, GraphProblem
from wfrun.engines.local.nodes import NODE_SPECS, InputSpec, NodeSpec

BAD_LINK = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
_CONVERTERS: Mapping[str, Callable[[Any], Any]] = {
    "INT": int,
    "FLOAT": float,
    "STRING": str,
    "BOOLEAN": bool,
}


@dataclass(frozen=True)
class Link:
    """A linked input: output ``index`` of node ``node_id``."""

    node_id: str
    index: int


@dataclass(frozen=True)
class PlannedNode:
    """A validated node: its class and its inputs (coerced literals or ``Link``)."""

    node_id: str
    spec: NodeSpec
    inputs: Mapping[str, Any]

    def links(self) -> Iterator[Link]:
        """Yields the node's linked inputs.

        Yields:
            Each ``Link`` among the inputs.
        """
        for value in self.inputs.values():
            if isinstance(value, Link):
                yield value


@dataclass(frozen=True)
class Plan:
    """A validated graph: the nodes to run, in execution order."""

    order: tuple[str, ...]
    nodes: Mapping[str, PlannedNode]


class _InputError(Exception):
    def __init__(self, type_: str, message: str, details: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.details = details


def validate_graph(graph: Mapping[str, Any]) -> list[str]:
    """Validates a graph and returns its execution order.

    Args:
        graph: ComfyUI API-format graph.

    Returns:
        Ids of the nodes reachable from the output nodes, in topological order;
        ties are broken by node id (numerically for numeric ids, which come first).

    Raises:
        GraphInvalid: With every problem found.
    """
    return list(plan_graph(graph).order)


def plan_graph(graph: Mapping[str, Any]) -> Plan:
    """Validates a graph and returns what the executor needs to run it.

    Args:
        graph: ComfyUI API-format graph.

    Returns:
        The plan.

    Raises:
        GraphInvalid: With every problem found.
    """
    specs = _resolve_classes(graph)
    outputs = [node_id for node_id, spec in specs.items() if spec.output_node]
    if not outputs:
        raise GraphInvalid(
            [GraphProblem(None, None, None, "prompt_no_outputs", "Prompt has no outputs")]
        )
    nodes, problems = _validate_reachable(graph, specs, outputs)
    if problems:
        raise GraphInvalid(problems)
    return Plan(_topological_order(nodes), nodes)


def node_sort_key(node_id: str) -> tuple[int, int, str]:
    """Sort key for node ids: numeric ids first, numerically, then the others lexically.

    Args:
        node_id: A node id.

    Returns:
        The key.
    """
    if node_id.isascii() and node_id.isdigit():
        return (0, int(node_id), node_id)
    return (1, 0, node_id)


def _resolve_classes(graph: object) -> dict[str, NodeSpec]:
    if not isinstance(graph, Mapping):
        message = "Prompt must be a JSON object of nodes by id"
        raise GraphInvalid([GraphProblem(None, None, None, "invalid_prompt", message)])
    specs: dict[str, NodeSpec] = {}
    problems = []
    for node_id in sorted(graph, key=lambda key: node_sort_key(str(key))):
        spec_or_problem = _resolve_class(node_id, graph[node_id])
        if isinstance(spec_or_problem, GraphProblem):
            problems.append(spec_or_problem)
        else:
            specs[node_id] = spec_or_problem
    if problems:
        raise GraphInvalid(problems)
    return specs


def _resolve_class(node_id: Any, node: Any) -> NodeSpec | GraphProblem:
    details = f"Node ID '#{node_id}'"
    if not isinstance(node_id, str):
        return GraphProblem(None, None, None, "invalid_prompt", "Node ids must be strings", details)
    if not isinstance(node, Mapping) or "class_type" not in node:
        message = "Cannot execute because a node is missing the class_type property."
        return GraphProblem(node_id, None, None, "invalid_prompt", message, details)
    class_type = node["class_type"]
    spec = NODE_SPECS.get(class_type) if isinstance(class_type, str) else None
    if spec is None:
        message = f"Cannot execute because node {class_type} does not exist."
        return GraphProblem(node_id, str(class_type), None, "invalid_prompt", message, details)
    if not isinstance(node.get("inputs", {}), Mapping):
        message = "Node inputs must be a JSON object"
        return GraphProblem(node_id, class_type, None, "invalid_prompt", message, details)
    return spec


def _validate_reachable(
    graph: Mapping[str, Any], specs: Mapping[str, NodeSpec], outputs: list[str]
) -> tuple[dict[str, PlannedNode], list[GraphProblem]]:
    nodes: dict[str, PlannedNode] = {}
    problems: list[GraphProblem] = []
    pending = sorted(outputs, key=node_sort_key, reverse=True)
    while pending:
        node_id = pending.pop()
        if node_id in nodes:
            continue
        planned, node_problems = _validate_node(graph, specs, node_id)
        nodes[node_id] = planned
        problems.extend(node_problems)
        pending.extend(link.node_id for link in planned.links() if link.node_id not in nodes)
    problems.sort(key=lambda problem: node_sort_key(problem.node_id or ""))
    return nodes, problems


def _validate_node(
    graph: Mapping[str, Any], specs: Mapping[str, NodeSpec], node_id: str
) -> tuple[PlannedNode, list[GraphProblem]]:
    spec = specs[node_id]
    raw_inputs: Mapping[str, Any] = graph[node_id].get("inputs", {})
    inputs: dict[str, Any] = {}
    problems: list[GraphProblem] = []
    for inp in spec.inputs:
        try:
            inputs[inp.name] = _check_input(specs, inp, raw_inputs)
        except _InputError as error:
            problem = GraphProblem(
                node_id, spec.class_type, inp.name, error.type, error.message, error.details
            )
            problems.append(problem)
    return PlannedNode(node_id, spec, inputs), problems


def _check_input(specs: Mapping[str, NodeSpec], inp: InputSpec, raw: Mapping[str, Any]) -> Any:
    if inp.name not in raw:
        raise _InputError("required_input_missing", "Required input is missing", inp.name)
    value = raw[inp.name]
    if isinstance(value, list):
        return _check_link(specs, inp, value)
    if isinstance(value, Mapping) and "__value__" in value:
        message = "Wrapped list values ({'__value__': [...]}) are not supported"
        raise _InputError("invalid_input_type", message, f"{inp.name}, {value}")
    return _check_literal(inp, value)


def _check_link(specs: Mapping[str, NodeSpec], inp: InputSpec, value: list[Any]) -> Link:
    if len(value) != 2 or not isinstance(value[0], str) or type(value[1]) is not int:
        raise _InputError("bad_linked_input", BAD_LINK, inp.name)
    source, index = value
    source_spec = specs.get(source)
    if source_spec is None:
        details = f"{inp.name}, linked node '{source}' does not exist"
        raise _InputError("bad_linked_input", BAD_LINK, details)
    if not 0 <= index < len(source_spec.outputs):
        details = f"{inp.name}, node '{source}' ({source_spec.class_type}) has no output {index}"
        raise _InputError("bad_linked_input", BAD_LINK, details)
    received = source_spec.outputs[index]
    if not types_compatible(received, inp.type):
        details = f"{inp.name}, received_type({received}) mismatch input_type({inp.type})"
        message = "Return type mismatch between linked nodes"
        raise _InputError("return_type_mismatch", message, details)
    return Link(source, index)


def types_compatible(received: str, expected: str) -> bool:
    """ComfyUI's non-strict type check for links (``*`` matches anything).

    Args:
        received: The source output's type, possibly comma-separated.
        expected: The input's type, possibly comma-separated.

    Returns:
        True when the link is allowed.
    """
    if received == expected:
        return True
    received_types = {part.strip() for part in received.split(",")}
    expected_types = {part.strip() for part in expected.split(",")}
    if "*" in received_types or "*" in expected_types:
        return True
    return bool(received_types & expected_types)


def _check_literal(inp: InputSpec, value: Any) -> Any:
    """Coerces and checks a literal like ComfyUI; raises ``_InputError``."""
    if inp.type == "*":
        return value
    if inp.type == "COMBO":
        return _check_combo(inp, value)
    converter = _CONVERTERS.get(inp.type)
    if converter is None:
        message = f"Input of type {inp.type} must be linked to a node output"
        raise _InputError("invalid_input_type", message, f"{inp.name}, {value}")
    try:
        converted = converter(value)
    except Exception as exc:
        message = f"Failed to convert an input value to a {inp.type} value"
        raise _InputError("invalid_input_type", message, f"{inp.name}, {value}, {exc}") from exc
    _check_bounds(inp, converted)
    return converted


def _check_bounds(inp: InputSpec, value: Any) -> None:
    options = inp.options or {}
    low, high = options.get("min"), options.get("max")
    if isinstance(value, float) and math.isnan(value) and (low is not None or high is not None):
        message = f"Failed to convert an input value to a {inp.type} value"
        raise _InputError("invalid_input_type", message, f"{inp.name}, nan, NaN is not allowed")
    if low is not None and value < low:
        message = f"Value {value} smaller than min of {low}"
        raise _InputError("value_smaller_than_min", message, inp.name)
    if high is not None and value > high:
        message = f"Value {value} bigger than max of {high}"
        raise _InputError("value_bigger_than_max", message, inp.name)


def _check_combo(inp: InputSpec, value: Any) -> Any:
    if inp.file_input:
        if not isinstance(value, str) or not value:
            message = "Failed to convert an input value to a file name"
            raise _InputError("invalid_input_type", message, f"{inp.name}, {value}")
        return value
    if value not in inp.choices:
        details = f"{inp.name}: '{value}' not in {list(inp.choices)}"
        raise _InputError("value_not_in_list", "Value not in list", details)
    return value


def check_linked_value(inp: InputSpec, value: Any) -> Any:
    """Checks, at run time, a value that arrived through a link.

    Links from ``*`` outputs (TestSleep) can carry anything, so the value is
    checked against the input's type, choices and range before the node runs.

    Args:
        inp: The input.
        value: The upstream node's output.

    Returns:
        The value (a FLOAT input turns an int into a float).

    Raises:
        TypeError: When the value has the wrong type.
        ValueError: When it is out of range or not among the choices.
    """
    if inp.type == "*":
        return value
    if inp.type == "IMAGE":
        _require_images(inp.name, value)
        return value
    _require_type(inp, value)
    try:
        return _check_literal(inp, float(value) if inp.type == "FLOAT" else value)
    except _InputError as error:
        raise ValueError(f"input {inp.name!r}: {error.message}: {error.details}") from None


_RUNTIME_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "INT": int,
    "FLOAT": (int, float),
    "STRING": str,
    "COMBO": str,
}


def _require_type(inp: InputSpec, value: Any) -> None:
    if inp.type == "BOOLEAN":
        valid = isinstance(value, bool)
    else:
        valid = isinstance(value, _RUNTIME_TYPES[inp.type]) and not isinstance(value, bool)
    if not valid:
        raise TypeError(f"input {inp.name!r} expects {inp.type}, got {type(value).__name__}")


def _require_images(name: str, value: Any) -> None:
    if not isinstance(value, tuple) or not value:
        raise TypeError(f"input {name!r} expects IMAGE, got {type(value).__name__}")
    if not all(isinstance(item, Image.Image) and item.mode == "RGB" for item in value):
        raise TypeError(f"input {name!r} expects IMAGE, got a batch of non-RGB images")


def _topological_order(nodes: Mapping[str, PlannedNode]) -> tuple[str, ...]:
    waiting = {node_id: {link.node_id for link in node.links()} for node_id, node in nodes.items()}
    dependents: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node_id, sources in waiting.items():
        for source in sources:
            dependents[source].append(node_id)
    ready = [(node_sort_key(node_id), node_id) for node_id, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(node_id)
        for dependent in dependents[node_id]:
            waiting[dependent].discard(node_id)
            if not waiting[dependent]:
                heapq.heappush(ready, (node_sort_key(dependent), dependent))
    if len(order) != len(nodes):
        raise GraphInvalid(_cycle_problems(nodes, set(order)))
    return tuple(order)


def _cycle_problems(nodes: Mapping[str, PlannedNode], done: set[str]) -> list[GraphProblem]:
    stuck = sorted((node_id for node_id in nodes if node_id not in done), key=node_sort_key)
    return [
        GraphProblem(
            node_id,
            nodes[node_id].spec.class_type,
            None,
            "dependency_cycle",
            "Dependency cycle detected",
            f"Node ID '#{node_id}' is part of or depends on a cycle",
        )
        for node_id in stuck
    ]
