"""Binding validated inputs into a ComfyUI API-format graph (pure).

Scalars replace the bound node input's literal. Media inputs become file names the engine can
resolve (``LoadImage.image``): ``wfrun_<key>_<i>.<ext>``, with the bytes handed over beside the
graph.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from wfrun.domain.manifest import InputSpec

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}


def extension(mime_type: str | None) -> str:
    """The file extension wfrun stores media of ``mime_type`` under (``bin`` if unknown)."""
    return _EXTENSIONS.get(mime_type or "", "bin")


def media_filename(key: str, index: int, mime_type: str | None) -> str:
    return f"wfrun_{key}_{index}.{extension(mime_type)}"


def bind_inputs(
    graph: Mapping[str, Any],
    specs: tuple[InputSpec, ...],
    values: Mapping[str, Any],
    media_names: Mapping[str, list[str]],
) -> dict[str, Any]:
    """A copy of ``graph`` with every manifest input written to its bound node input.

    A media input with several files binds its first file (a node input takes one name).
    Inputs whose value is None keep the graph's own literal.
    """
    bound: dict[str, Any] = copy.deepcopy(dict(graph))
    for spec in specs:
        node_inputs = bound[spec.binding.node_id].setdefault("inputs", {})
        if spec.key in media_names:
            node_inputs[spec.binding.input_name] = media_names[spec.key][0]
        elif values.get(spec.key) is not None:
            node_inputs[spec.binding.input_name] = values[spec.key]
    return bound
