"""Validating a ComfyUI API-format graph against a server's ``/object_info`` (pure).

Used when a ``comfyui`` revision is imported: every class must exist on the instance, every
link must point at an existing node's output whose type matches the input (``*`` matches
anything; comma-separated types are unions), literals must satisfy INT/FLOAT coercion and
min/max and COMBO option lists (inputs flagged ``image_upload`` take any file name, as
LoadImage does), required inputs must be present, and every manifest binding must name a real
input of its node's class. Problems are reported in ComfyUI's vocabulary, naming node, class
and input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    node_id: str
    class_type: str | None
    input_name: str | None
    type: str
    message: str

    def __str__(self) -> str:
        where = f"node {self.node_id}" + (f" ({self.class_type})" if self.class_type else "")
        if self.input_name:
            where += f" input {self.input_name!r}"
        return f"{where}: {self.type}: {self.message}"


def _inputs_of(info: Mapping[str, Any]) -> dict[str, tuple[Any, dict[str, Any], bool]]:
    """name → (type or options, config, required)."""
    found: dict[str, tuple[Any, dict[str, Any], bool]] = {}
    for section, required in (("required", True), ("optional", False)):
        for name, spec in (info.get("input", {}).get(section) or {}).items():
            config = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            found[name] = (spec[0], config, required)
    return found


def validate(
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
    bindings: Iterable[tuple[str, str]] = (),
) -> list[Problem]:
    """Every problem of ``graph`` (and of the manifest ``bindings``) against ``object_info``."""
    problems: list[Problem] = []
    for node_id, node in graph.items():
        problems += _node_problems(str(node_id), node, graph, object_info)
    for node_id, input_name in bindings:
        problems += _binding_problems(node_id, input_name, graph, object_info)
    return problems


def _node_problems(
    node_id: str, node: Any, graph: Mapping[str, Any], object_info: Mapping[str, Any]
) -> list[Problem]:
    if not isinstance(node, dict) or "class_type" not in node:
        return [Problem(node_id, None, None, "invalid_prompt", "node is missing class_type")]
    class_type = node["class_type"]
    info = object_info.get(class_type)
    if info is None:
        return [
            Problem(
                node_id,
                class_type,
                None,
                "invalid_prompt",
                f"class {class_type} is not available",
            )
        ]
    declared = _inputs_of(info)
    given = node.get("inputs") or {}
    problems = [
        Problem(node_id, class_type, name, "required_input_missing", "Required input is missing")
        for name, (_, _, required) in declared.items()
        if required and name not in given
    ]
    for name, value in given.items():
        if name in declared:
            problem = _value_problem(value, declared[name], graph, object_info)
            if problem:
                problems.append(Problem(node_id, class_type, name, *problem))
    return problems


def _value_problem(
    value: Any,
    declared: tuple[Any, dict[str, Any], bool],
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
) -> tuple[str, str] | None:
    kind, config, _ = declared
    if isinstance(value, list):
        return _link_problem(value, kind, graph, object_info)
    if isinstance(kind, list):
        if config.get("image_upload") or value in kind:
            return None
        return "value_not_in_list", f"{value!r} not in the {len(kind)} options"
    return _literal_problem(value, kind, config)


def _link_problem(
    link: list[Any], kind: Any, graph: Mapping[str, Any], object_info: Mapping[str, Any]
) -> tuple[str, str] | None:
    if len(link) != 2 or not isinstance(link[0], str) or not isinstance(link[1], int):
        return "bad_linked_input", "a link must be [node_id (string), output_index (int)]"
    source = graph.get(link[0])
    if not isinstance(source, dict):
        return "bad_linked_input", f"linked node {link[0]} does not exist"
    source_info = object_info.get(source.get("class_type", ""))
    if source_info is None:
        return None  # the unknown class is reported on its own node
    outputs = source_info.get("output") or []
    if not 0 <= link[1] < len(outputs):
        return "bad_linked_input", f"node {link[0]} has no output {link[1]}"
    wanted = "COMBO" if isinstance(kind, list) else str(kind)
    if not _types_match(str(outputs[link[1]]), wanted):
        return "return_type_mismatch", f"received {outputs[link[1]]}, the input takes {wanted}"
    return None


def _types_match(received: str, wanted: str) -> bool:
    if "*" in (received, wanted):
        return True
    return bool(set(received.split(",")) & set(wanted.split(",")))


def _literal_problem(value: Any, kind: Any, config: dict[str, Any]) -> tuple[str, str] | None:
    caster = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(str(kind))
    if caster is None:
        return None  # custom types and "*" take what the node makes of them
    try:
        number = caster(value)
    except (TypeError, ValueError):
        return "invalid_input_type", f"{value!r} is not a valid {kind}"
    if kind in ("INT", "FLOAT"):
        if "min" in config and number < config["min"]:
            return "value_smaller_than_min", f"Value {value} smaller than min of {config['min']}"
        if "max" in config and number > config["max"]:
            return "value_bigger_than_max", f"Value {value} bigger than max of {config['max']}"
    return None


def _binding_problems(
    node_id: str, input_name: str, graph: Mapping[str, Any], object_info: Mapping[str, Any]
) -> list[Problem]:
    node = graph.get(node_id)
    if not isinstance(node, dict):
        return [Problem(node_id, None, input_name, "bad_binding", "bound node is not in the graph")]
    info = object_info.get(node.get("class_type", ""))
    if info is not None and input_name not in _inputs_of(info):
        return [
            Problem(
                node_id,
                node["class_type"],
                input_name,
                "bad_binding",
                f"{node['class_type']} has no input {input_name!r}",
            )
        ]
    return []
