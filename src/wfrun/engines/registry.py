"""Which engines exist, and publish-time validation of their payloads."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from wfrun.domain import seedance
from wfrun.domain.manifest import InputSpec, defaults
from wfrun.engines.base import Engine
from wfrun.engines.binding import bind_inputs, media_filename
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.engines.local.engine import LocalEngine
from wfrun.engines.local.executor import GraphInvalid, GraphProblem, validate_graph
from wfrun.engines.object_info import validate as object_info_validate
from wfrun.errors import InvalidWorkflowPackage

AVAILABLE_KINDS = ("local", "comfyui", "seedance")


def build_engines() -> dict[str, Engine]:
    """The engines this process can drive, keyed by revision ``engine_kind``."""
    prefix = f"wfrun-{socket.gethostname()}-{os.getpid()}"
    return {"local": LocalEngine(), "comfyui": ComfyUIEngine(prefix)}


async def close_engines(engines: Mapping[str, Engine]) -> None:
    """Close the engines that hold connections (ComfyUI sockets and clients)."""
    for engine in engines.values():
        closer = getattr(engine, "aclose", None)
        if closer is not None:
            await closer()


def validate_payload(
    kind: str,
    graph: Mapping[str, Any],
    specs: tuple[InputSpec, ...],
    object_info: Mapping[str, Any] | None = None,
    *,
    source: str = "the instance's /object_info",
) -> None:
    """Check a revision's graph for its engine, with manifest defaults bound in.

    ``comfyui`` graphs are checked against ``object_info``, an instance's (``source`` names it
    in the problems); None means the caller decided not to check them against any. wfrun's
    built-in node set knows ComfyUI's core image nodes only, so it never stands in for an
    instance's: it checks ``local`` graphs alone.

    Raises:
        InvalidWorkflowPackage: naming every problem (node, class, input).
    """
    if kind not in AVAILABLE_KINDS:
        raise InvalidWorkflowPackage(
            f"engine {kind!r} is not available on this server (available: "
            f"{', '.join(AVAILABLE_KINDS)})"
        )
    if kind == "seedance":
        _validate_seedance(graph, specs)
        return
    media = {s.key: [media_filename(s.key, 0, "image/png")] for s in specs if s.is_media}
    bound = bind_inputs(graph, specs, defaults(specs), media)
    if kind == "comfyui":
        if object_info is not None:
            _validate_comfyui(bound, specs, object_info, source)
        return
    try:
        validate_graph(bound)
    except GraphInvalid as exc:
        raise InvalidWorkflowPackage(
            "graph: " + "; ".join(_describe(p) for p in exc.problems)
        ) from None


def _validate_seedance(graph: Mapping[str, Any], specs: tuple[InputSpec, ...]) -> None:
    problems = seedance.payload_problems(graph)
    problems += [
        f"input {s.key}: bound to unknown Seedance field {s.binding.input_name!r}"
        for s in specs
        if s.binding.input_name not in seedance.FIELDS
    ]
    if problems:
        raise InvalidWorkflowPackage("graph: " + "; ".join(problems))


def _describe(problem: GraphProblem) -> str:
    where = []
    if problem.node_id is not None:
        where.append(f"node {problem.node_id}")
    if problem.class_type:
        where.append(f"({problem.class_type})")
    if problem.input_name:
        where.append(f"input {problem.input_name!r}")
    prefix = " ".join(where)
    text = f"{problem.type}: {problem.message}"
    if problem.details:
        text += f" ({problem.details})"
    return f"{prefix}: {text}" if prefix else text


def _validate_comfyui(
    graph: Mapping[str, Any], specs: tuple[InputSpec, ...], info: Mapping[str, Any], source: str
) -> None:
    bindings = [(s.binding.node_id, s.binding.input_name) for s in specs]
    problems = object_info_validate(graph, info, bindings)
    if problems:
        raise InvalidWorkflowPackage(
            "graph: " + "; ".join(str(p) for p in problems) + f" [checked against {source}]"
        )
