"""A workflow's form, generated from its revision's ``editable_parameter_manifest``, and the
submitted form turned back into the ``inputs`` object the API takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wfrun.db.workflows import WorkflowRevision
from wfrun.domain.manifest import InputSpec
from wfrun.errors import InvalidWorkflowInput
from wfrun.services.catalog import revision_spec
from wfrun.services.runs import RunRequest

_NUMBER_TYPES = {"integer", "number", "seed"}


@dataclass(frozen=True)
class Field:
    """One form control: its HTML kind and the manifest entry behind it."""

    spec: InputSpec
    kind: str
    """``text``, ``textarea``, ``number``, ``select``, ``checkbox`` or ``media``."""

    @property
    def name(self) -> str:
        return f"in_{self.spec.key}"

    @property
    def label(self) -> str:
        return self.spec.display_name or self.spec.key

    @property
    def default(self) -> str:
        value = self.spec.default_value
        if value is None or isinstance(value, list | dict):
            return ""
        if isinstance(value, bool):
            return "true" if value else ""
        return str(value)

    @property
    def step(self) -> str:
        if self.spec.step is not None:
            return _plain(self.spec.step)
        return "1" if self.spec.type in ("integer", "seed") else "any"

    @property
    def min_text(self) -> str:
        return "" if self.spec.min is None else _plain(self.spec.min)

    @property
    def max_text(self) -> str:
        return "" if self.spec.max is None else _plain(self.spec.max)

    @property
    def accept(self) -> str:
        return ",".join(self.spec.accept) or f"{self.spec.type}/*"


def _plain(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _kind(spec: InputSpec) -> str:
    if spec.is_media:
        return "media"
    if spec.type == "enum":
        return "select"
    if spec.type == "boolean":
        return "checkbox"
    if spec.type in _NUMBER_TYPES:
        return "number"
    long_text = spec.max_length is None or spec.max_length > 200
    return "textarea" if spec.type == "text" and long_text else "text"


def fields(specs: tuple[InputSpec, ...]) -> list[Field]:
    return [Field(spec, _kind(spec)) for spec in specs]


def run_request(
    form: Mapping[str, Any], row: WorkflowRevision, idempotency_key: str = ""
) -> RunRequest:
    """The submit (or quote) request a posted workflow form makes, on the revision shown."""
    return RunRequest(
        workflow_id=row.id,
        revision_id=row.revision_id,
        inputs=inputs_from(form, revision_spec(row).inputs),
        accept_external_cost_risk=form.get("accept_external_cost_risk") == "on",
        idempotency_key=idempotency_key,
    )


def inputs_from(form: Mapping[str, Any], specs: tuple[InputSpec, ...]) -> dict[str, Any]:
    """The run's inputs from posted form values (``in_<key>``); empty optional controls are
    left out so the manifest's defaults apply. The API's validation then judges them."""
    inputs: dict[str, Any] = {}
    for field in fields(specs):
        raw = form.get(field.name)
        if field.kind == "checkbox":
            inputs[field.spec.key] = raw in ("on", "true", "1")
            continue
        text = raw.strip() if isinstance(raw, str) else ""
        if text == "":
            continue
        inputs[field.spec.key] = _value(field, text)
    return inputs


def _value(field: Field, text: str) -> Any:
    spec = field.spec
    if field.kind == "media":
        refs = [part.strip() for part in text.split("\n") if part.strip()]
        return refs if spec.multiple else refs[0]
    if field.kind == "number":
        return _number(spec, text)
    if field.kind == "select":
        for option in spec.options:
            if str(option) == text:
                return option
    return text


def _number(spec: InputSpec, text: str) -> int | float:
    try:
        if spec.type in ("integer", "seed"):
            return int(text)
        value = float(text)
    except ValueError:
        raise InvalidWorkflowInput(
            f"input {spec.key} must be a number, got {text[:40]!r}"
        ) from None
    return int(value) if value.is_integer() else value
