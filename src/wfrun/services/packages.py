"""The workflow package file format (``wfrun.workflow/v1``) and its validation.

A package is one JSON document an operator imports with ``wfrun workflows import FILE``::

    {
      "format": "wfrun.workflow/v1",
      "slug": "demo-poster",                 # stable per owner; re-import adds a revision
      "title": "…", "description": "…", "tags": ["demo"], "visibility": "public" | "private",
      "cover_url": null,
      "engine": "local" | "comfyui" | "seedance",
      "graph": { "<node id>": {"class_type": "…", "inputs": {…}} },   # ComfyUI API format
      "inputs": [ {"key": "n2_width", "type": "integer", "bind": {"node": "2", "input": "width"},
                   "display_name": "…", "required": false, "default_value": 512, "min": 16, …} ],
      "outputs": [ {"key": "n5_images", "type": "image", "bind": {"node": "5"}, "multiple": true} ],
      "pricing": {"fixed_fee": "0.01", "price_per_second": "0.002", "estimated_seconds": 5},
      "timeout_seconds": 600,
      "output_retention_hours": 168,         # optional; default from settings
      "required_labels": {"gpu": "a100"},    # comfyui: only instances carrying these labels
      "max_queue_seconds": 600               # optional; may only lower the server's deadline
    }

``bind`` may be omitted for keys shaped ``n<node>_<input>`` (the chenyu convention). Prices are
decimal strings in yuan (at most 8 decimals). Validation reports every problem with its path.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wfrun.domain import manifest as m
from wfrun.domain.money import parse_amount
from wfrun.domain.pricing import PriceTable
from wfrun.errors import InvalidWorkflowInput, InvalidWorkflowPackage

_KEY_BINDING = re.compile(r"^n(?P<node>[A-Za-z0-9]+)_(?P<input>[A-Za-z_][A-Za-z0-9_]*)$")
_OUTPUT_BINDING = re.compile(r"^n(?P<node>[A-Za-z0-9]+)_")
Amount = str | int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BindSpec(_Strict):
    node: str = Field(min_length=1)
    input: str | None = None


class InputEntry(_Strict):
    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    type: Literal[
        "string",
        "text",
        "integer",
        "number",
        "boolean",
        "enum",
        "seed",
        "image",
        "video",
        "audio",
        "file",
    ]
    bind: BindSpec | None = None
    display_name: str = ""
    description: str = ""
    required: bool = False
    default_value: Any = None
    options: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = Field(None, gt=0)
    max_length: int | None = Field(None, ge=1)
    multiple: bool = False
    max_items: int | None = Field(None, ge=1)
    accept: list[str] | None = None
    max_size_bytes: int | None = Field(None, ge=1)


class OutputEntry(_Strict):
    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    type: Literal["text", "image", "video", "audio", "file"]
    bind: BindSpec | None = None
    display_name: str = ""
    multiple: bool = False


class TokenPrice(_Strict):
    """CNY per million output tokens (seedance packages)."""

    per_million: Amount
    per_million_with_video: Amount

    @field_validator("per_million", "per_million_with_video")
    @classmethod
    def _exact(cls, value: Amount) -> Amount:
        if parse_amount(value) < 0:
            raise ValueError("must not be negative")
        return value


class Pricing(_Strict):
    token_prices: dict[str, TokenPrice] = Field(
        default_factory=dict,
        description="seedance: what this workflow charges per model (or model@resolution), "
        "instead of the server's seedance.prices",
    )
    fixed_fee: Amount = "0"
    price_per_second: Amount = "0"
    estimated_seconds: int = Field(0, ge=0)
    external_estimate: Amount = "0"
    may_incur_external_model_cost: bool = False
    external_cost_notice: str = ""

    @field_validator("fixed_fee", "price_per_second", "external_estimate")
    @classmethod
    def _exact(cls, value: Amount) -> Amount:
        if parse_amount(value) < 0:
            raise ValueError("must not be negative")
        return value


class Package(_Strict):
    format: Literal["wfrun.workflow/v1"]
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    visibility: Literal["public", "private"] = "public"
    cover_url: str | None = None
    engine: Literal["local", "comfyui", "seedance"]
    graph: dict[str, dict[str, Any]] = Field(min_length=1)
    inputs: list[InputEntry] = Field(default_factory=list)
    outputs: list[OutputEntry] = Field(min_length=1)
    pricing: Pricing = Field(default_factory=Pricing)
    timeout_seconds: int = Field(600, ge=1, le=86_400)
    output_retention_hours: int | None = Field(None, ge=1, le=24 * 365)
    required_labels: dict[str, str] = Field(default_factory=dict)
    max_queue_seconds: int | None = Field(None, ge=1, le=86_400)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not re.fullmatch(r"[\w-]{1,40}", tag):
                raise ValueError(f"tag {tag!r} must be 1-40 letters, digits, '_' or '-'")
        return value


def parse_package(data: Any) -> Package:
    """Parse a package document, reporting every schema problem with its path.

    Raises:
        InvalidWorkflowPackage: listing each problem.
    """
    try:
        package = Package.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise InvalidWorkflowPackage("; ".join(problems)) from None
    problems = _semantic_problems(package)
    if problems:
        raise InvalidWorkflowPackage("; ".join(problems))
    return package


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


def input_specs(package: Package) -> tuple[m.InputSpec, ...]:
    return tuple(_input_spec(entry) for entry in package.inputs)


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


def _binding_of(entry: InputEntry) -> m.Binding | None:
    if entry.bind is not None and entry.bind.input:
        return m.Binding(entry.bind.node, entry.bind.input)
    match = _KEY_BINDING.match(entry.key)
    return m.Binding(match["node"], match["input"]) if match else None


def _output_node_of(entry: OutputEntry) -> str | None:
    if entry.bind is not None:
        return entry.bind.node
    match = _OUTPUT_BINDING.match(entry.key)
    return match["node"] if match else None


def _input_spec(entry: InputEntry) -> m.InputSpec:
    binding = _binding_of(entry)
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
    node = _output_node_of(entry)
    assert node is not None
    return m.OutputSpec(
        key=entry.key,
        type=entry.type,
        node_id=node,
        display_name=entry.display_name,
        multiple=entry.multiple,
    )


def _semantic_problems(package: Package) -> list[str]:
    problems: list[str] = []
    problems += _duplicate_keys([e.key for e in package.inputs], "inputs")
    problems += _duplicate_keys([e.key for e in package.outputs], "outputs")
    for i, entry in enumerate(package.inputs):
        problems += [f"inputs.{i} ({entry.key}): {p}" for p in _input_problems(package, entry)]
    for i, out in enumerate(package.outputs):
        node = _output_node_of(out)
        if node is None:
            problems.append(f"outputs.{i} ({out.key}): needs bind.node (key is not n<node>_…)")
        elif node not in package.graph:
            problems.append(f"outputs.{i} ({out.key}): node {node} is not in the graph")
    problems += _pricing_problems(package)
    return problems


def _pricing_problems(package: Package) -> list[str]:
    pricing = package.pricing
    if package.engine == "seedance":
        if parse_amount(pricing.price_per_second) or pricing.estimated_seconds:
            reason = (
                "pricing.price_per_second: a seedance run is priced by Ark's tokens and "
                "pricing.fixed_fee, not by time (the provider's queue is not compute)"
            )
            return [reason]
        return []
    if pricing.token_prices:
        return ["pricing.token_prices: only seedance packages are priced by tokens"]
    return []


def _duplicate_keys(keys: list[str], where: str) -> list[str]:
    dupes = {k for k in keys if keys.count(k) > 1}
    return [f"{where}: key {k} appears more than once" for k in sorted(dupes)]


def _input_problems(package: Package, entry: InputEntry) -> list[str]:
    binding = _binding_of(entry)
    if binding is None:
        return ["needs bind {node, input} (key is not shaped n<node>_<input>)"]
    node = package.graph.get(binding.node_id)
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
