"""What is wrong with a workflow package document, all at once, with hints (pure).

``wfrun packages check`` and ``wfrun workflows import`` report every problem of a package in
one pass, each as ``path: message`` (and a hint for the usual mistakes):

- a ComfyUI *UI-format* workflow (``nodes``/``links`` arrays) where a package or its graph
  belongs → export with *Save (API format)*;
- a bare API-format graph (``{node id: {class_type, inputs}}``) instead of a package → wrap it
  with ``wfrun packages init``;
- a price written as a JSON number → write amounts as strings;
- a ``FILL IN: …`` placeholder ``wfrun packages init`` wrote and nobody replaced.

The schema's own errors (pydantic's, in :mod:`wfrun.services.packages`) arrive here as plain
``(location, message, value)`` triples to be worded the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = "FILL IN"
"""Values ``wfrun packages init`` leaves for the author start with this."""
UI_FORMAT_HINT = 'export the workflow with "Save (API format)" in ComfyUI'
BARE_GRAPH_HINT = "wrap it with `wfrun packages init FILE`"
AMOUNT_HINT = 'write amounts as strings, e.g. "0.02"'
NO_OUTPUT_HINT = "list a node that saves a result (SaveImage, SaveVideo, PreviewAny, …)"
AMOUNT_FIELDS = frozenset({"fixed_fee", "price_per_second", "external_estimate"})
TOKEN_AMOUNT_FIELDS = frozenset({"per_million", "per_million_with_video"})
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})
_NOISE_PREFIXES = ("Value error, ", "Assertion failed, ")
_PATTERNS = {
    "slug": "must be 1-100 lowercase letters, digits or '-', starting with a letter or digit",
    "key": "must be a letter or '_' then up to 63 letters, digits or '_'",
}


@dataclass(frozen=True)
class PackageProblem:
    """One problem: where (a dotted path into the document), what, and what to do."""

    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "hint": self.hint}


def dotted(loc: Iterable[int | str]) -> str:
    """``("inputs", 1, "key")`` → ``inputs.1.key``; the whole document is ``(document)``."""
    return ".".join(str(part) for part in loc) or "(document)"


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PLACEHOLDER)


def is_ui_format(value: Any) -> bool:
    """A ComfyUI UI-format workflow (what *Save* writes): ``nodes`` and ``links`` arrays."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("nodes"), list)
        and isinstance(value.get("links"), list)
    )


def is_api_graph(value: Any) -> bool:
    """A ComfyUI API-format graph: a non-empty object of nodes that each name a class_type."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(node, dict) and "class_type" in node for node in value.values())
    )


def document_problems(document: Any) -> list[PackageProblem]:
    """Problems of the document's shape that make a schema check pointless (then the only
    ones reported): not an object, a UI-format workflow, a bare API-format graph."""
    if is_ui_format(document):
        what = 'a ComfyUI UI-format workflow ("nodes" and "links" arrays), not a package'
        return [PackageProblem("(document)", what, f"{UI_FORMAT_HINT}, then {BARE_GRAPH_HINT}")]
    if is_api_graph(document):
        what = "a bare ComfyUI API-format graph, not a package"
        return [PackageProblem("(document)", what, BARE_GRAPH_HINT)]
    if not isinstance(document, dict):
        what = f"a package is a JSON object, not {_json_type(document)}"
        return [PackageProblem("(document)", what)]
    return []


def value_problems(document: dict[str, Any]) -> list[PackageProblem]:
    """Problems found by looking at values, before (and instead of) the schema's wording:
    unfilled placeholders anywhere, prices written as numbers, a UI-format or malformed graph,
    an empty output list."""
    problems = [
        PackageProblem(dotted(loc), "not filled in: " + value[len(PLACEHOLDER) :].lstrip(": "))
        for loc, value in _walk(document, ())
        if is_placeholder(value)
    ]
    problems += _float_amounts(document)
    problems += graph_problems(document.get("graph"))
    if document.get("outputs") == []:
        problems.append(PackageProblem("outputs", "lists no output", NO_OUTPUT_HINT))
    return problems


def graph_problems(graph: Any) -> list[PackageProblem]:
    """The graph must be an API-format graph: every node an object naming its class_type."""
    if graph is None:
        return []
    if is_ui_format(graph):
        what = 'is a UI-format workflow ("nodes" and "links" arrays), not an API-format graph'
        return [PackageProblem("graph", what, UI_FORMAT_HINT)]
    if not isinstance(graph, dict):
        return []  # the schema says so
    problems = []
    for node_id, node in graph.items():
        if not isinstance(node, dict):
            problems.append(PackageProblem(f"graph.{node_id}", "a node must be an object"))
        elif not isinstance(node.get("class_type"), str):
            problems.append(PackageProblem(f"graph.{node_id}", "the node has no class_type"))
        elif not isinstance(node.get("inputs", {}), dict):
            problems.append(PackageProblem(f"graph.{node_id}.inputs", "must be an object"))
    return problems


def _float_amounts(document: dict[str, Any]) -> list[PackageProblem]:
    pricing = document.get("pricing")
    if not isinstance(pricing, dict):
        return []
    found: list[tuple[tuple[str, ...], Any]] = [
        (("pricing", k), v) for k, v in pricing.items() if k in AMOUNT_FIELDS
    ]
    tokens = pricing.get("token_prices")
    if isinstance(tokens, dict):
        for model, price in tokens.items():
            if isinstance(price, dict):
                found += [
                    (("pricing", "token_prices", model, k), v)
                    for k, v in price.items()
                    if k in TOKEN_AMOUNT_FIELDS
                ]
    return [
        PackageProblem(dotted(loc), f"is the number {value!r}; amounts are exact", AMOUNT_HINT)
        for loc, value in found
        if isinstance(value, float)
    ]


def _walk(value: Any, loc: tuple[int | str, ...]) -> Iterable[tuple[tuple[int | str, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index))
    else:
        yield loc, value


def schema_problems(
    errors: Iterable[tuple[tuple[int | str, ...], str, str]],
    covered: Sequence[PackageProblem] = (),
) -> list[PackageProblem]:
    """Word the schema's ``(location, error type, message)`` errors as problems: one per
    place (a union's alternatives merged), the ``Value error,`` noise dropped, and nothing
    under a place ``covered`` already explains."""
    merged: dict[str, list[str]] = {}
    for loc, kind, message in errors:
        path = dotted(_without_union_tags(loc))
        if _is_covered(path, covered):
            continue
        text = _clean(kind, message, path)
        if text not in merged.setdefault(path, []):
            merged[path].append(text)
    return [PackageProblem(path, " or ".join(texts)) for path, texts in merged.items()]


def _without_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    return tuple(
        part for part in loc if not (isinstance(part, str) and (part in _UNION_TAGS or "[" in part))
    )


def _is_covered(path: str, covered: Sequence[PackageProblem]) -> bool:
    return any(path == c.path or path.startswith(c.path + ".") for c in covered)


def _clean(kind: str, message: str, path: str) -> str:
    if kind == "string_pattern_mismatch" and path.rpartition(".")[2] in _PATTERNS:
        return _PATTERNS[path.rpartition(".")[2]]
    if kind == "extra_forbidden":
        return "unknown field (the format allows no others)"
    for prefix in _NOISE_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return "null" if value is None else names.get(type(value), "an array")
