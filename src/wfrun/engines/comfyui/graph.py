"""Pure helpers on API-format graphs for the ComfyUI engine.

Protocol facts relied on (ComfyUI 0.3.64):

- Only nodes reachable backwards (through links ``[source_id: str, output_index: int]``)
  from *output nodes* (``output_node: true`` in ``/object_info``) are validated and run.
- ``POST /upload/image`` with ``overwrite=true`` replaces a same-named input file, so two
  runs uploading different bytes under one name would see each other's file. Uploads are
  therefore named after their content (``<sha256 prefix>-<name>``): same name, same bytes.
"""

from __future__ import annotations

import copy
import hashlib
import posixpath
from collections.abc import Mapping
from typing import Any

UPLOAD_SUBFOLDER = "wfrun"
"""Input sub-folder wfrun uploads into (keeps LoadImage's top-level list clean)."""


def upload_name(name: str, data: bytes) -> str:
    """A content-addressed file name for an upload, keeping the original name readable."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    base = posixpath.basename(name.replace("\\", "/")) or "upload.bin"
    return f"{digest}-{base}"


def rewrite_names(graph: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``graph`` where every literal string input equal to a key of ``renames``
    (e.g. ``LoadImage.image = "wfrun_n1_image_0.png"``) becomes its value."""
    copied: dict[str, Any] = copy.deepcopy(dict(graph))
    if not renames:
        return copied
    for node in copied.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        for key, value in inputs.items():
            if isinstance(value, str) and value in renames:
                inputs[key] = renames[value]
    return copied


def class_of(graph: Mapping[str, Any], node_id: str) -> str:
    """The node's ``class_type``, or ``"?"``."""
    node = graph.get(node_id)
    class_type = node.get("class_type") if isinstance(node, Mapping) else None
    return class_type if isinstance(class_type, str) else "?"


def nodes_to_run(
    graph: Mapping[str, Any], object_info: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The nodes ComfyUI will run for ``graph``, dependencies first.

    Args:
        graph: API-format graph.
        object_info: ``GET /object_info``; when None every node is assumed to run.

    Returns:
        Ids reachable backwards from the output nodes, in a topological order.
    """
    if object_info is None:
        roots = sorted(graph, key=sort_key)
    else:
        roots = [n for n in sorted(graph, key=sort_key) if _is_output(graph, n, object_info)]
    order: list[str] = []
    seen: set[str] = set()
    for root in roots:
        _visit(graph, root, seen, order)
    return tuple(order)


def sort_key(node_id: str) -> tuple[int, int, str]:
    """Numeric ids first, numerically; then the others lexically."""
    return (
        (0, int(node_id), node_id) if node_id.isascii() and node_id.isdigit() else (1, 0, node_id)
    )


def _is_output(graph: Mapping[str, Any], node_id: str, object_info: Mapping[str, Any]) -> bool:
    info = object_info.get(class_of(graph, node_id))
    return isinstance(info, Mapping) and info.get("output_node") is True


def _visit(graph: Mapping[str, Any], root: str, seen: set[str], order: list[str]) -> None:
    """Iterative post-order DFS along links (cycles are cut, not reported)."""
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        node_id, expanded = stack.pop()
        if expanded:
            order.append(node_id)
            continue
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        stack.append((node_id, True))
        for source in reversed(_sources(graph[node_id])):
            if source not in seen:
                stack.append((source, False))


def _sources(node: Any) -> list[str]:
    inputs = node.get("inputs") if isinstance(node, Mapping) else None
    if not isinstance(inputs, Mapping):
        return []
    sources = []
    for value in inputs.values():
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            sources.append(value[0])
    return sorted(set(sources), key=sort_key)
