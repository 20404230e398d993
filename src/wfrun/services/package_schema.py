"""The package format's schema (``wfrun.workflow/v1``): one pydantic model per part.

:mod:`wfrun.services.packages` checks documents against it and turns packages into manifests;
``docs/workflow-package.md`` describes every field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from wfrun.domain import manifest as m
from wfrun.domain.money import parse_amount

_KEY_BINDING = re.compile(r"^n(?P<node>[A-Za-z0-9]+)_(?P<input>[A-Za-z_][A-Za-z0-9_]*)$")
_OUTPUT_BINDING = re.compile(r"^n(?P<node>[A-Za-z0-9]+)_")


def _exact_amount(value: str | int) -> str | int:
    if parse_amount(value) < 0:
        raise ValueError("must not be negative")
    return value


Amount = Annotated[str | int, AfterValidator(_exact_amount)]
"""A yuan amount: a decimal string (or a whole number), at most 8 decimals, not negative."""
ENGINES = ("local", "comfyui", "seedance")


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
    enabled: bool = True
    """False: a candidate parameter (``wfrun packages init`` lists every widget input so),
    checked for its form only and left out of the manifest; the graph keeps its value."""


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


def binding_of(entry: InputEntry) -> m.Binding | None:
    if entry.bind is not None and entry.bind.input:
        return m.Binding(entry.bind.node, entry.bind.input)
    match = _KEY_BINDING.match(entry.key)
    return m.Binding(match["node"], match["input"]) if match else None


def output_node_of(entry: OutputEntry) -> str | None:
    if entry.bind is not None:
        return entry.bind.node
    match = _OUTPUT_BINDING.match(entry.key)
    return match["node"] if match else None
