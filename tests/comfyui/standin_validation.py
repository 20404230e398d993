"""``POST /prompt`` validation of the stand-in: wfrun's local validator, ComfyUI's reply shapes.

Reproduced (reference §3, §6.1–§6.3):

- Class checks run over *all* nodes first: a missing ``class_type`` or unknown class is
  ``400 invalid_prompt`` with ``details: "Node ID '#<id>'"`` and empty ``node_errors``.
- No output node (or none selected by ``partial_execution_targets``) is
  ``400 prompt_no_outputs``.
- Each output node is validated on its own; errors are filed per node with
  ``dependent_outputs`` and ``class_type``. If every output fails →
  ``400 prompt_outputs_failed_validation`` whose ``details`` joins only the output nodes'
  own errors; if at least one output is valid → accepted (200), failing outputs dropped,
  their errors still in ``node_errors``.
- LoadImage checks that its file exists (``custom_validation_failed``,
  ``"image - Invalid image file: <name>"``).

Not reproduced: the per-input messages are the local validator's (which follow ComfyUI's
wording), e.g. a link to a missing node is ``bad_linked_input`` here but
``exception_during_inner_validation`` (``KeyError``) in ComfyUI.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wfrun.engines.local.executor import GraphInvalid, GraphProblem, validate_graph
from wfrun.engines.local.nodes import NODE_SPECS
from wfrun.engines.local.validation import node_sort_key


@dataclass
class Verdict:
    """The outcome: ``error`` set → 400; otherwise run ``outputs``."""

    outputs: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    node_errors: dict[str, Any] = field(default_factory=dict)


def error_object(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def validate_prompt(
    prompt: Mapping[str, Any],
    input_exists: Callable[[str], bool],
    targets: Sequence[str] | None = None,
) -> Verdict:
    """Validates like ComfyUI's ``validate_prompt``; see the module docstring."""
    class_error = _class_error(prompt)
    if class_error is not None:
        return Verdict(error=class_error)
    outputs = [n for n in _sorted(prompt) if NODE_SPECS[prompt[n]["class_type"]].output_node]
    if targets is not None:
        outputs = [n for n in outputs if n in targets]
    if not outputs:
        return Verdict(error=error_object("prompt_no_outputs", "Prompt has no outputs"))
    verdict = Verdict()
    own_errors: list[str] = []
    for output in outputs:
        problems = _problems_for(prompt, output, input_exists)
        if not problems:
            verdict.outputs.append(output)
            continue
        _file(verdict.node_errors, prompt, output, problems)
        own_errors.extend(f"{p.message}: {p.details}" for p in problems if p.node_id == output)
    if not verdict.outputs:
        verdict.error = error_object(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            "\n".join(own_errors),
        )
    return verdict


def _sorted(prompt: Mapping[str, Any]) -> list[str]:
    return sorted(prompt, key=node_sort_key)


def _class_error(prompt: Mapping[str, Any]) -> dict[str, Any] | None:
    for node_id, node in prompt.items():
        details = f"Node ID '#{node_id}'"
        if not isinstance(node, Mapping) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return error_object("invalid_prompt", message, details)
        class_type = node["class_type"]
        if not isinstance(class_type, str) or class_type not in NODE_SPECS:
            message = f"Cannot execute because node {class_type} does not exist."
            return error_object("invalid_prompt", message, details)
    return None


def _problems_for(
    prompt: Mapping[str, Any], output: str, input_exists: Callable[[str], bool]
) -> list[GraphProblem]:
    """Problems of one output's sub-graph (the other output nodes left out)."""
    sub = {n: node for n, node in prompt.items() if n == output or not _is_output(node)}
    try:
        order = validate_graph(sub)
    except GraphInvalid as exc:
        return list(exc.problems)
    return [p for n in order if (p := _missing_file(n, prompt[n], input_exists)) is not None]


def _is_output(node: Mapping[str, Any]) -> bool:
    return NODE_SPECS[node["class_type"]].output_node


def _missing_file(
    node_id: str, node: Mapping[str, Any], input_exists: Callable[[str], bool]
) -> GraphProblem | None:
    value = node.get("inputs", {}).get("image")
    if node["class_type"] != "LoadImage" or not isinstance(value, str) or input_exists(value):
        return None
    message = "Custom validation failed for node"
    details = f"image - Invalid image file: {value}"
    return GraphProblem(node_id, "LoadImage", "image", "custom_validation_failed", message, details)


def _file(
    node_errors: dict[str, Any],
    prompt: Mapping[str, Any],
    output: str,
    problems: Sequence[GraphProblem],
) -> None:
    for problem in problems:
        node_id = problem.node_id or output
        entry = node_errors.setdefault(
            node_id,
            {"errors": [], "dependent_outputs": [], "class_type": problem.class_type},
        )
        error = _error_entry(prompt, problem)
        if error not in entry["errors"]:
            entry["errors"].append(error)
        if output not in entry["dependent_outputs"]:
            entry["dependent_outputs"].append(output)


_WITH_VALUE = frozenset(
    {
        "invalid_input_type",
        "value_smaller_than_min",
        "value_bigger_than_max",
        "value_not_in_list",
        "bad_linked_input",
    }
)
_RECEIVED_TYPE = re.compile(r"received_type\(([^)]*)\)")


def _error_entry(prompt: Mapping[str, Any], problem: GraphProblem) -> dict[str, Any]:
    """ComfyUI's per-input error, with the ``extra_info`` keys ComfyUI gives that type."""
    return {
        "type": problem.type,
        "message": problem.message,
        "details": problem.details,
        "extra_info": _extra_info(prompt, problem),
    }


def _extra_info(prompt: Mapping[str, Any], problem: GraphProblem) -> dict[str, Any]:
    if problem.input_name is None:
        return {}
    extra: dict[str, Any] = {"input_name": problem.input_name}
    if problem.type in ("required_input_missing", "custom_validation_failed"):
        return extra
    spec = NODE_SPECS.get(problem.class_type or "")
    inputs = {inp.name: inp for inp in spec.inputs} if spec else {}
    if problem.input_name in inputs:
        kind, *options = inputs[problem.input_name].object_info([])
        extra["input_config"] = [kind, options[0] if options else {}]
    node = prompt.get(problem.node_id or "", {})
    raw = node.get("inputs", {}).get(problem.input_name)
    if problem.type in _WITH_VALUE:
        extra["received_value"] = raw
    if problem.type == "invalid_input_type" and problem.details.count(", ") >= 2:
        extra["exception_message"] = problem.details.split(", ", 2)[2]
    if problem.type == "return_type_mismatch":
        found = _RECEIVED_TYPE.search(problem.details)
        extra["received_type"] = found.group(1) if found else None
        extra["linked_node"] = raw
    return extra
