"""The workflow package file format (``wfrun.workflow/v1``): its check, and its manifests.

A package is one JSON document an operator imports with ``wfrun workflows import FILE``::

    {
      "format": "wfrun.workflow/v1",
      "slug": "demo-poster",                 # stable per owner; re-import adds a revision
      "title": "…", "description": "…", "tags": ["demo"], "visibility": "public" | "private",
      "cover_url": null,
      "engine": "local" | "comfyui" | "seedance",
      "graph": { "<node id>": {"class_type": "…", "inputs": {…}} },   # ComfyUI API format
      "inputs": [ {"key": "n2_width", "type": "integer", "bind": {"node": "2", "input": "width"},
                   "display_name": "…", "required": false, "default_value": 512, "min": 16, …},
                 {"key": "n3_seed", "enabled": false, …} ],    # a candidate, not offered
      "outputs": [ {"key": "n5_images", "type": "image", "bind": {"node": "5"}, "multiple": true} ],
      "pricing": {"fixed_fee": "0.01", "price_per_second": "0.002", "estimated_seconds": 5},
      "timeout_seconds": 600,
      "output_retention_hours": 168,         # optional; default from settings
      "required_labels": {"gpu": "a100"},    # comfyui: only instances carrying these labels
      "max_queue_seconds": 600               # optional; may only lower the server's deadline
    }

``bind`` may be omitted for keys shaped ``n<node>_<input>`` (the chenyu convention). Prices are
decimal strings in yuan (at most 8 decimals). :func:`check_document` reports every problem at
once, each with its path (and a hint for the usual mistakes, :mod:`wfrun.domain.package_report`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from wfrun.domain import manifest as m
from wfrun.domain import package_report as r
from wfrun.domain.money import parse_amount
from wfrun.domain.package_report import PackageProblem
from wfrun.domain.pricing import PriceTable
from wfrun.engines.registry import validate_payload
from wfrun.errors import InvalidWorkflowInput, InvalidWorkflowPackage
from wfrun.services.package_schema import (
    ENGINES,
    BindSpec,
    InputEntry,
    OutputEntry,
    Package,
    Pricing,
    binding_of,
    output_node_of,
)

__all__ = [
    "OfflineCheck",
    "Package",
    "PackageReport",
    "check_document",
    "check_offline",
    "input_specs",
    "output_specs",
    "parse_package",
    "price_table",
]

E = TypeVar("E", bound=BaseModel)


@dataclass(frozen=True)
class PackageReport:
    """Every problem of a package document, found in one pass; ``package`` when it has none."""

    package: Package | None
    problems: tuple[PackageProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_package(data: Any) -> Package:
    """Parse a package document, reporting every problem (schema and meaning) with its path.

    Raises:
        InvalidWorkflowPackage: listing each problem.
    """
    report = check_document(data)
    if report.package is None:
        raise InvalidWorkflowPackage("; ".join(str(p) for p in report.problems))
    return report.package


def check_document(data: Any) -> PackageReport:
    """Every problem of a package document: its shape (a UI-format workflow, a bare graph),
    unfilled placeholders and numeric prices, the schema, and what the entries mean (bindings,
    defaults, outputs, pricing) for every entry that parses, even when others do not."""
    fatal = r.document_problems(data)
    if fatal:
        return PackageReport(None, tuple(fatal))
    problems = r.value_problems(data)
    try:
        package: Package | None = Package.model_validate(data)
    except ValidationError as exc:
        package = None
        errors = [(e["loc"], e["type"], e["msg"]) for e in exc.errors()]
        problems += [_suggest(p) for p in r.schema_problems(errors, covered=problems)]
    problems += [PackageProblem(path, text) for path, text in _semantic_problems(_parts(data))]
    return PackageReport(package if not problems else None, tuple(problems))


_FIELDS_AT: dict[str, tuple[str, ...]] = {
    "": tuple(Package.model_fields),
    "inputs": tuple(InputEntry.model_fields),
    "outputs": tuple(OutputEntry.model_fields),
    "inputs.bind": tuple(BindSpec.model_fields),
    "outputs.bind": tuple(BindSpec.model_fields),
    "pricing": tuple(Pricing.model_fields),
}


def _suggest(problem: PackageProblem) -> PackageProblem:
    """An unknown field close to a real one names it."""
    if not problem.message.startswith("unknown field"):
        return problem
    *parent, name = problem.path.split(".")
    fields = _FIELDS_AT.get(".".join(p for p in parent if not p.isdigit()), ())
    close = difflib.get_close_matches(name, fields, n=1)
    return replace(problem, hint=f"did you mean {close[0]!r}?") if close else problem


def input_specs(package: Package) -> tuple[m.InputSpec, ...]:
    """The manifest: the enabled entries (a disabled one is a candidate, left out)."""
    return tuple(_input_spec(entry) for entry in package.inputs if entry.enabled)


def output_specs(package: Package) -> tuple[m.OutputSpec, ...]:
    return tuple(_output_spec(entry) for entry in package.outputs)


def price_table(package: Package) -> PriceTable:
    p = package.pricing
    return PriceTable(
        fixed_fee=parse_amount(p.fixed_fee),
        price_per_second=parse_amount(p.price_per_second),
        estimated_seconds=p.estimated_seconds,
        external_estimate=parse_amount(p.external_estimate),
        may_incur_external_model_cost=p.may_incur_external_model_cost,
        external_cost_notice=p.external_cost_notice,
        token_prices={
            name: (parse_amount(t.per_million), parse_amount(t.per_million_with_video))
            for name, t in sorted(p.token_prices.items())
        },
    )


def _input_spec(entry: InputEntry) -> m.InputSpec:
    binding = binding_of(entry)
    assert binding is not None  # checked by _semantic_problems
    return m.InputSpec(
        key=entry.key,
        type=entry.type,
        binding=binding,
        display_name=entry.display_name,
        description=entry.description,
        required=entry.required,
        default_value=entry.default_value,
        options=tuple(entry.options or ()),
        min=entry.min,
        max=entry.max,
        step=entry.step,
        max_length=entry.max_length,
        multiple=entry.multiple,
        max_items=entry.max_items,
        accept=tuple(entry.accept or ()),
        max_size_bytes=entry.max_size_bytes,
    )


def _output_spec(entry: OutputEntry) -> m.OutputSpec:
    node = output_node_of(entry)
    assert node is not None
    return m.OutputSpec(
        key=entry.key,
        type=entry.type,
        node_id=node,
        display_name=entry.display_name,
        multiple=entry.multiple,
    )


@dataclass(frozen=True)
class _Parts:
    """What of a document parses, entry by entry, so that the meaning of the good entries is
    checked even when others are broken. ``graph`` is None when it is not a graph."""

    engine: str | None
    graph: dict[str, Any] | None
    inputs: tuple[tuple[int, InputEntry], ...]
    outputs: tuple[tuple[int, OutputEntry], ...]
    pricing: Pricing | None


def _parts(data: dict[str, Any]) -> _Parts:
    graph = data.get("graph")
    good_graph = isinstance(graph, dict) and bool(graph) and not r.graph_problems(graph)
    engine = data.get("engine")
    return _Parts(
        engine=engine if engine in ENGINES else None,
        graph=graph if good_graph else None,
        inputs=_entries(InputEntry, data.get("inputs")),
        outputs=_entries(OutputEntry, data.get("outputs")),
        pricing=_entry(Pricing, data.get("pricing", {})),
    )


def _entries(model: type[E], raw: Any) -> tuple[tuple[int, E], ...]:
    items = raw if isinstance(raw, list) else []
    parsed = ((i, _entry(model, item)) for i, item in enumerate(items))
    return tuple((i, entry) for i, entry in parsed if entry is not None)


def _entry(model: type[E], raw: Any) -> E | None:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _semantic_problems(parts: _Parts) -> list[tuple[str, str]]:
    enabled = [(i, entry) for i, entry in parts.inputs if entry.enabled]
    problems = _duplicate_keys([e.key for _, e in enabled], "inputs")
    problems += _duplicate_keys([e.key for _, e in parts.outputs], "outputs")
    if parts.graph is not None:
        problems += [
            (f"inputs.{i} ({entry.key})", text)
            for i, entry in enabled
            for text in _input_problems(parts.graph, entry)
        ]
        problems += [
            (f"outputs.{i} ({out.key})", text)
            for i, out in parts.outputs
            for text in _output_problems(parts.graph, out)
        ]
    if parts.pricing is not None and parts.engine is not None:
        problems += _pricing_problems(parts.engine, parts.pricing)
    return problems


def _output_problems(graph: dict[str, Any], out: OutputEntry) -> list[str]:
    node = output_node_of(out)
    if node is None:
        return ["needs bind.node (key is not n<node>_…)"]
    if node not in graph:
        return [f"node {node} is not in the graph"]
    return []


def _pricing_problems(engine: str, pricing: Pricing) -> list[tuple[str, str]]:
    if engine == "seedance":
        if parse_amount(pricing.price_per_second) or pricing.estimated_seconds:
            reason = (
                "a seedance run is priced by Ark's tokens and pricing.fixed_fee, not by time "
                "(the provider's queue is not compute)"
            )
            return [("pricing.price_per_second", reason)]
        return []
    if pricing.token_prices:
        return [("pricing.token_prices", "only seedance packages are priced by tokens")]
    return []


def _duplicate_keys(keys: list[str], where: str) -> list[tuple[str, str]]:
    dupes = {k for k in keys if keys.count(k) > 1}
    return [(where, f"key {k} appears more than once") for k in sorted(dupes)]


def _input_problems(graph: dict[str, Any], entry: InputEntry) -> list[str]:
    binding = binding_of(entry)
    if binding is None:
        return ["needs bind {node, input} (key is not shaped n<node>_<input>)"]
    node = graph.get(binding.node_id)
    if node is None:
        return [f"bound node {binding.node_id} is not in the graph"]
    if binding.input_name not in node.get("inputs", {}):
        return [f"node {binding.node_id} has no input {binding.input_name!r}"]
    problems = []
    if entry.type == "enum" and not entry.options:
        problems.append("an enum needs options")
    if entry.default_value is not None:
        problems += _default_problems(entry)
    if entry.required and entry.default_value is not None:
        problems.append("a required input must not have a default_value")
    return problems


def _default_problems(entry: InputEntry) -> list[str]:
    spec = _input_spec(entry)
    try:
        if spec.is_media:
            m.check_media(spec, entry.default_value)
        else:
            m.check_scalar(spec, entry.default_value)
    except InvalidWorkflowInput as exc:
        return [f"default_value is invalid: {exc.detail}"]
    return []


@dataclass(frozen=True)
class OfflineCheck:
    """``wfrun packages check``: the document's report, graph included, and what was not
    checked."""

    report: PackageReport
    notes: tuple[str, ...] = ()


def check_offline(
    data: Any, object_info: Mapping[str, Any] | None = None, *, source: str = ""
) -> OfflineCheck:
    """:func:`check_document`, then (when that passes) the graph for its engine: ``local``
    against wfrun's built-in nodes, ``comfyui`` against ``object_info`` when one is given
    (``source`` names it), ``seedance`` against the Seedance fields. Nothing is stored and no
    instance is asked: an import still checks a comfyui graph against its instances."""
    report = check_document(data)
    package = report.package
    if package is None:
        return OfflineCheck(report)
    specs = input_specs(package)
    try:
        validate_payload(package.engine, package.graph, specs, object_info, source=source)
    except InvalidWorkflowPackage as exc:
        problem = PackageProblem("graph", exc.detail.removeprefix("graph: "))
        return OfflineCheck(PackageReport(None, (problem,)))
    return OfflineCheck(report, _offline_notes(package, object_info, source))


def _offline_notes(
    package: Package, object_info: Mapping[str, Any] | None, source: str
) -> tuple[str, ...]:
    disabled = sum(1 for entry in package.inputs if not entry.enabled)
    notes = []
    if disabled:
        notes.append(
            f'{disabled} candidate parameter(s) disabled: set "enabled": true to offer one'
        )
    if package.engine == "local":
        notes.append("graph checked against wfrun's built-in nodes")
    elif package.engine == "comfyui" and object_info is not None:
        notes.append(f"graph checked against {source}")
    elif package.engine == "comfyui":
        notes.append(
            "graph not checked against any /object_info (pass --object-info FILE); "
            "`wfrun workflows import` checks it against the registered instances"
        )
    return tuple(notes)
