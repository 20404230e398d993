"""``wfrun packages init``: a package drafted from a ComfyUI "Save (API format)" export.

The draft lists every widget input of the graph (a literal, not a link) as a candidate
parameter with ``"enabled": false`` (the importer leaves disabled entries out of the manifest;
the graph keeps its value), typed from the node definitions when an ``/object_info`` is known
(ranges, steps, option lists, multi-line text, seeds) and from the value otherwise. Media
loaders (``LoadImage``, ``LoadVideo``, ``LoadAudio``, or any input flagged ``image_upload``/
``video_upload``/``audio_upload``) become enabled, required media parameters; output nodes
(``SaveImage``, ``SaveVideo``, ``PreviewAny``, …) become outputs. The price table holds
``FILL IN`` placeholders that ``wfrun packages check`` reports until they are replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wfrun.domain import package_report as r
from wfrun.domain.manifest import DEFAULT_MAX_MEDIA_BYTES
from wfrun.engines.local.nodes import object_info as local_object_info
from wfrun.errors import InvalidWorkflowPackage

ACCEPT = {
    "image": ["image/png", "image/jpeg", "image/webp"],
    "video": ["video/mp4", "video/webm", "video/quicktime"],
    "audio": ["audio/mpeg", "audio/wav", "audio/flac", "audio/ogg"],
}
LOADERS = {
    "LoadImage": ("image", "image"),
    "LoadImageMask": ("image", "image"),
    "LoadImageOutput": ("image", "image"),
    "LoadVideo": ("file", "video"),
    "LoadAudio": ("audio", "audio"),
}
"""Class → (its media input, the media type)."""
_UPLOAD_FLAGS = {"image_upload": "image", "video_upload": "video", "audio_upload": "audio"}
OUTPUT_NODES = {
    "SaveImage": "image",
    "PreviewImage": "image",
    "SaveAnimatedWEBP": "image",
    "SaveAnimatedPNG": "image",
    "SaveVideo": "video",
    "SaveWEBM": "video",
    "SaveAudio": "audio",
    "SaveAudioMP3": "audio",
    "SaveAudioOpus": "audio",
    "PreviewAudio": "audio",
    "PreviewAny": "text",
}
_OUTPUT_TYPES = {"IMAGE": "image", "VIDEO": "video", "AUDIO": "audio", "STRING": "text"}
_OUTPUT_NAMES = {"image": "images", "video": "videos", "audio": "audio", "text": "text"}
_SEED_NAMES = frozenset({"seed", "noise_seed"})
_CONVENTIONAL_KEY = re.compile(r"n[A-Za-z0-9]+_[A-Za-z_][A-Za-z0-9_]{0,61}")
PRICE_PLACEHOLDERS = {
    "fixed_fee": f'{r.PLACEHOLDER}: yuan charged per run, a decimal string like "0.02"',
    "price_per_second": f'{r.PLACEHOLDER}: yuan per second of execution, like "0.002" (or "0")',
    "estimated_seconds": f"{r.PLACEHOLDER}: seconds a typical run takes (the quote), like 10",
}


@dataclass(frozen=True)
class Draft:
    """How to draft: the engine, the package's names, and the node definitions if known."""

    engine: str
    slug: str
    title: str
    object_info: Mapping[str, Any] | None = None


def export_graph(document: Any) -> dict[str, Any]:
    """The API-format graph of an export (or of a ``{"prompt": graph}`` request body).

    Raises:
        InvalidWorkflowPackage: a UI-format workflow, a package, or not a graph at all.
    """
    if isinstance(document, dict) and r.is_api_graph(document.get("prompt")):
        document = document["prompt"]
    if r.is_api_graph(document):
        return dict(document)
    if r.is_ui_format(document):
        detail = 'a ComfyUI UI-format workflow ("nodes" and "links" arrays)'
        raise InvalidWorkflowPackage(f"{detail} — {r.UI_FORMAT_HINT}")
    if isinstance(document, dict) and "format" in document:
        raise InvalidWorkflowPackage("already a package — check it with `wfrun packages check`")
    raise InvalidWorkflowPackage(
        "not a ComfyUI API-format graph ({node id: {class_type, inputs}}) — " + r.UI_FORMAT_HINT
    )


def slug_for(name: str) -> str:
    """A package slug from a file name: ``My Flow (v2).json`` → ``my-flow-v2``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100].strip("-")
    return slug or "workflow"


def draft_package(graph: Mapping[str, Any], draft: Draft) -> dict[str, Any]:
    """A package document around ``graph`` (see the module docstring)."""
    info = draft.object_info
    if info is None and draft.engine == "local":
        info = local_object_info()
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for node_id in sorted(graph, key=_node_order):
        node = graph[node_id]
        definition = (info or {}).get(node["class_type"])
        inputs += _node_inputs(node_id, node, definition)
        output = _output(node_id, node, definition)
        if output is not None:
            outputs.append(output)
    return {
        "format": "wfrun.workflow/v1",
        "slug": draft.slug,
        "title": draft.title,
        "description": "",
        "tags": [],
        "visibility": "public",
        "engine": draft.engine,
        "graph": dict(graph),
        "inputs": inputs,
        "outputs": outputs,
        "pricing": dict(PRICE_PLACEHOLDERS),
        "timeout_seconds": 600,
    }


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


def _node_inputs(
    node_id: str, node: Mapping[str, Any], definition: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    declared = _declared_inputs(definition)
    given = node.get("inputs")
    entries = []
    for name, value in (given if isinstance(given, dict) else {}).items():
        if _is_link(value):
            continue
        if definition is not None and name not in declared:
            continue  # a UI-only widget (LoadImage's "upload"): ComfyUI ignores it
        keyed = _keyed(node_id, name, name)
        label = f"{_title(node, definition)}: {name}"
        spec = declared.get(name)
        media = _media_type(node["class_type"], name, spec)
        if media is not None:
            entries.append(_media_entry(keyed, label, media))
        else:
            entries.append(_candidate(keyed, label, name, value, spec))
    return [e for e in entries if e]


def _keyed(node_id: str, name: str | None, suffix: str) -> dict[str, Any]:
    """An entry's key, ``n<node>_<suffix>`` (chenyu's convention, which binds by itself); when
    the node id or the name does not fit a key (a subgraph node ``75:72``), a key made to fit
    and an explicit ``bind``."""
    key = f"n{node_id}_{suffix}"
    if len(key) <= 64 and _CONVENTIONAL_KEY.fullmatch(key):
        return {"key": key}
    bind = {"node": node_id} | ({"input": name} if name is not None else {})
    return {"key": re.sub(r"[^A-Za-z0-9_]", "_", key)[:64], "bind": bind}


def _declared_inputs(definition: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    sections = (definition or {}).get("input") or {}
    return {
        name: spec if isinstance(spec, list) else [spec]
        for section in ("required", "optional")
        for name, spec in (sections.get(section) or {}).items()
    }


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _title(node: Mapping[str, Any], definition: Mapping[str, Any] | None) -> str:
    meta = node.get("_meta")
    if isinstance(meta, dict) and isinstance(meta.get("title"), str) and meta["title"]:
        return str(meta["title"])
    if definition is not None and definition.get("display_name"):
        return str(definition["display_name"])
    return str(node["class_type"])


def _config(spec: list[Any] | None) -> dict[str, Any]:
    if spec is not None and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1]
    return {}


def _media_type(class_type: str, name: str, spec: list[Any] | None) -> str | None:
    loader = LOADERS.get(class_type)
    if loader is not None and loader[0] == name:
        return loader[1]
    flags = [kind for flag, kind in _UPLOAD_FLAGS.items() if _config(spec).get(flag)]
    return flags[0] if flags else None


def _media_entry(keyed: dict[str, Any], label: str, media: str) -> dict[str, Any]:
    return {
        **keyed,
        "enabled": True,
        "type": media,
        "display_name": label,
        "required": True,
        "accept": ACCEPT[media],
        "max_size_bytes": DEFAULT_MAX_MEDIA_BYTES,
    }


def _candidate(
    keyed: dict[str, Any], label: str, name: str, value: Any, spec: list[Any] | None
) -> dict[str, Any]:
    typed = _typed_from_definition(name, spec, value) if spec else None
    typed = typed or _typed_from_value(name, value)
    if typed is None:
        return {}
    entry: dict[str, Any] = {**keyed, "enabled": False, "display_name": label}
    tooltip = _config(spec).get("tooltip")
    if isinstance(tooltip, str) and tooltip:
        entry["description"] = tooltip
    return {**entry, **typed, "default_value": value}


def _typed_from_value(name: str, value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "seed"} if name in _SEED_NAMES and value >= 0 else {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "text" if "\n" in value else "string"}
    return None


def _typed_from_definition(name: str, spec: list[Any], value: Any) -> dict[str, Any] | None:
    kind, config = spec[0], _config(spec)
    options = kind if isinstance(kind, list) else config.get("options")
    if (isinstance(kind, list) or kind == "COMBO") and options:
        return {"type": "enum", "options": list(options)}
    if kind == "INT" and isinstance(value, int) and not isinstance(value, bool):
        if name in _SEED_NAMES or config.get("control_after_generate"):
            return {"type": "seed"} if value >= 0 else None
        return {"type": "integer", **_bounds(config)}
    if kind == "FLOAT" and isinstance(value, int | float) and not isinstance(value, bool):
        return {"type": "number", **_bounds(config)}
    if kind == "STRING" and isinstance(value, str):
        return {"type": "text" if config.get("multiline") else "string"}
    if kind == "BOOLEAN" and isinstance(value, bool):
        return {"type": "boolean"}
    return None


def _bounds(config: Mapping[str, Any]) -> dict[str, Any]:
    bounds = {k: config[k] for k in ("min", "max") if isinstance(config.get(k), int | float)}
    step = config.get("step")
    if isinstance(step, int | float) and step > 0:
        bounds["step"] = step
    return bounds


def _output(
    node_id: str, node: Mapping[str, Any], definition: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    kind = OUTPUT_NODES.get(node["class_type"])
    if kind is None and definition is not None and definition.get("output_node"):
        kind = _output_type_of(definition)
    if kind is None:
        return None
    return {
        **_keyed(node_id, None, _OUTPUT_NAMES.get(kind, "files")),
        "type": kind,
        "display_name": _title(node, definition),
        "multiple": kind != "text",
    }


def _output_type_of(definition: Mapping[str, Any]) -> str:
    """An output node's result type: the type of its first linked input."""
    for spec in _declared_inputs(definition).values():
        if spec and isinstance(spec[0], str) and spec[0] in _OUTPUT_TYPES:
            return _OUTPUT_TYPES[spec[0]]
    return "file"


def render(document: Mapping[str, Any]) -> str:
    """The document as JSON laid out for editing: one line per field, graph node and
    input/output entry (like ``src/wfrun/demo/*.json``)."""
    fields = []
    for key, value in document.items():
        if key in ("graph", "pricing") and isinstance(value, dict) and value:
            nodes = [f"    {_json(str(k))}: {_json(v)}" for k, v in value.items()]
            text = "{\n" + ",\n".join(nodes) + "\n  }"
        elif key in ("inputs", "outputs") and isinstance(value, list) and value:
            text = "[\n" + ",\n".join(f"    {_json(v)}" for v in value) + "\n  ]"
        else:
            text = _json(value)
        fields.append(f"  {_json(key)}: {text}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
