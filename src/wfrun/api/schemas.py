"""Request bodies (chenyu field names). Responses are mapped explicitly in ``wire``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from wfrun.domain.money import parse_amount
from wfrun.errors import IdempotencyKeyRequired, InvalidParameter

REAL_PERSON_TOP_LEVEL = "inputs.contains_real_person_material"


def idempotency_key(value: str | None) -> str:
    """The body's ``idempotency_key``: required, 1-255 printable characters."""
    if value is None or value == "":
        raise IdempotencyKeyRequired("idempotency_key is required (1-255 printable characters)")
    if len(value) > 255 or not value.isprintable():
        raise IdempotencyKeyRequired("idempotency_key must be 1-255 printable characters")
    return value


def max_cost(value: str | None) -> int | None:
    """The body's optional ``max_cost``: an amount string (like ``"0.50"``), not negative;
    in minor units."""
    if value is None:
        return None
    try:
        amount = parse_amount(value)
    except ValueError as exc:
        raise InvalidParameter(f"max_cost: {exc}") from None
    if amount < 0:
        raise InvalidParameter(f"max_cost must not be negative, got {value!r}")
    return amount


class QuoteBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    workflow_id: StrictStr = Field(min_length=1, max_length=64)
    revision_id: StrictStr | None = Field(None, min_length=1, max_length=64)
    inputs: dict[str, Any] = Field(default_factory=dict)
    accept_external_cost_risk: StrictBool = False
    max_cost: StrictStr | None = Field(None, max_length=40)

    def merged_inputs(self) -> dict[str, Any]:
        """Inputs, with chenyu's top-level ``"inputs.contains_real_person_material"`` folded in."""
        extra = self.model_extra or {}
        merged = dict(self.inputs)
        if REAL_PERSON_TOP_LEVEL in extra:
            merged.setdefault("contains_real_person_material", extra[REAL_PERSON_TOP_LEVEL])
        return merged

    def unknown_fields(self) -> list[str]:
        return sorted(k for k in (self.model_extra or {}) if k != REAL_PERSON_TOP_LEVEL)


class SubmitBody(QuoteBody):
    idempotency_key: StrictStr | None = None
    callback_url: StrictStr | None = Field(None, min_length=1, max_length=2048)


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_order_id: StrictStr = Field(min_length=1, max_length=64)


class VideoBody(BaseModel):
    """``/model-runs/videos``; chenyu's generated sample also spells inputs at the top level
    as ``"inputs.<name>"``, which are folded into ``inputs``."""

    model_config = ConfigDict(extra="allow")

    idempotency_key: StrictStr | None = None
    request_id: StrictStr | None = Field(None, max_length=255)
    inputs: dict[str, Any] = Field(default_factory=dict)
    max_cost: StrictStr | None = Field(None, max_length=40)
    callback_url: StrictStr | None = Field(None, min_length=1, max_length=2048)

    def merged_inputs(self) -> dict[str, Any]:
        merged = dict(self.inputs)
        for name, value in (self.model_extra or {}).items():
            if name.startswith("inputs."):
                merged.setdefault(name.removeprefix("inputs."), value)
        return merged

    def unknown_fields(self) -> list[str]:
        return sorted(k for k in (self.model_extra or {}) if not k.startswith("inputs."))


class ModelRunCancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: StrictStr = Field(min_length=1, max_length=64)
