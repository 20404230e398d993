"""Workflow revisions of kind ``seedance``: one ``SeedanceVideo`` node whose literal inputs,
overridden by the manifest's bound inputs, make the run's video request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wfrun.domain.seedance.models import MODELS
from wfrun.domain.seedance.request import VideoRequest, parse_video_request

NODE_CLASS = "SeedanceVideo"
FIELDS = frozenset(
    {
        "model",
        "prompt",
        "generation_category",
        "first_frame",
        "last_frame",
        "images",
        "videos",
        "audios",
        "resolution",
        "ratio",
        "duration",
        "generate_audio",
        "watermark",
    }
)


def request_node(payload: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The payload's one ``SeedanceVideo`` node: (node id, its literal inputs)."""
    nodes = [(k, v) for k, v in payload.items() if v.get("class_type") == NODE_CLASS]
    if len(nodes) != 1:
        raise ValueError(f"a seedance graph has exactly one {NODE_CLASS} node")
    node_id, node = nodes[0]
    return node_id, node.get("inputs", {})


def payload_problems(payload: Mapping[str, Any]) -> list[str]:
    """Publish-time checks of a ``seedance`` payload."""
    try:
        node_id, inputs = request_node(payload)
    except ValueError as exc:
        return [str(exc)]
    problems = [
        f"node {node_id}: unknown field {name!r} (known: {', '.join(sorted(FIELDS))})"
        for name in inputs
        if name not in FIELDS
    ]
    model = inputs.get("model")
    if model is not None and model not in MODELS:
        problems.append(f"node {node_id}: model {model!r} is not a known Seedance model")
    return problems


def bind_request(
    payload: Mapping[str, Any],
    bindings: Mapping[str, str],
    values: Mapping[str, Any],
    *,
    real_person: bool,
) -> VideoRequest:
    """The request a run makes: the node's literal inputs, overridden by the manifest inputs
    bound to its fields (``bindings``: input key → field).

    Raises:
        InvalidWorkflowInput: the combined request breaks a Seedance rule.
    """
    _, literals = request_node(payload)
    fields: dict[str, Any] = dict(literals)
    for key, name in bindings.items():
        if values.get(key) is not None:
            fields[name] = values[key]
    fields["contains_real_person_material"] = real_person
    return parse_video_request(fields)
