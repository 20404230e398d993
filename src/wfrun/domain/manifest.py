"""Parameter and output manifests, and validation of submitted inputs against them (pure).

A submit's ``inputs`` keys are manifest keys. Unknown keys, missing required keys, wrong types,
out-of-range numbers and bad media values are rejected with a detail naming the input; defaults
fill the rest. Media values are checked for form, declared/sniffed type, ``accept`` and size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wfrun.domain.media import MediaRef, MediaSource, MediaValueError, parse_media_value, sniff_mime
from wfrun.errors import InvalidWorkflowInput

SCALAR_TYPES = frozenset({"string", "text", "integer", "number", "boolean", "enum", "seed"})
MEDIA_TYPES = frozenset({"image", "video", "audio", "file"})
SEED_MAX = 2**64 - 1
DEFAULT_MAX_MEDIA_BYTES = 20 * 1024 * 1024
RESERVED_KEYS = frozenset({"contains_real_person_material"})
_DECIMAL_INTEGER = re.compile(r"-?[0-9]{1,20}")


@dataclass(frozen=True)
class Binding:
    """Where an input goes in the engine payload (internal, never on the wire)."""

    node_id: str
    input_name: str


@dataclass(frozen=True)
class InputSpec:
    key: str
    type: str
    binding: Binding
    display_name: str = ""
    description: str = ""
    required: bool = False
    default_value: Any = None
    options: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    step: float | None = None
    max_length: int | None = None
    multiple: bool = False
    max_items: int | None = None
    accept: tuple[str, ...] = ()
    max_size_bytes: int | None = None

    @property
    def is_media(self) -> bool:
        return self.type in MEDIA_TYPES


@dataclass(frozen=True)
class OutputSpec:
    key: str
    type: str
    node_id: str
    display_name: str = ""
    multiple: bool = False


@dataclass(frozen=True)
class ValidatedInputs:
    """Inputs after validation: plain values for scalars, parsed refs for media."""

    values: dict[str, Any]
    media: dict[str, tuple[MediaRef, ...]] = field(default_factory=dict)


def validate_inputs(specs: tuple[InputSpec, ...], inputs: Mapping[str, Any]) -> ValidatedInputs:
    """Check ``inputs`` against ``specs``, filling defaults.

    Raises:
        InvalidWorkflowInput: with a detail naming the first offending input.
    """
    by_key = {spec.key: spec for spec in specs}
    for key in inputs:
        if key not in by_key and key not in RESERVED_KEYS:
            raise InvalidWorkflowInput(f"input {key} is not a parameter of this workflow")
    values: dict[str, Any] = {}
    media: dict[str, tuple[MediaRef, ...]] = {}
    for spec in specs:
        if spec.key not in inputs or inputs[spec.key] is None:
            if spec.required:
                raise InvalidWorkflowInput(f"input {spec.key} is required")
            values[spec.key] = spec.default_value
            continue
        raw = inputs[spec.key]
        if spec.is_media:
            media[spec.key] = check_media(spec, raw)
            values[spec.key] = raw
        else:
            values[spec.key] = check_scalar(spec, raw)
    return ValidatedInputs(values=values, media=media)


def check_scalar(spec: InputSpec, value: Any) -> Any:
    """Validate one scalar value; returns it normalised."""
    checker = _SCALAR_CHECKS[spec.type]
    return checker(spec, value)


def _check_string(spec: InputSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong_type(spec, "a string", value)
    if spec.max_length is not None and len(value) > spec.max_length:
        raise InvalidWorkflowInput(
            f"input {spec.key} must be at most {spec.max_length} characters (got {len(value)})"
        )
    return value


def _check_integer(spec: InputSpec, value: Any) -> int:
    if isinstance(value, str) and _DECIMAL_INTEGER.fullmatch(value.strip()):
        value = int(value)  # chenyu's own examples send numbers as strings ("duration": "5")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(spec, "an integer", value)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise _wrong_type(spec, "an integer", value)
    result = int(value)
    _check_range(spec, result)
    return result


def _check_number(spec: InputSpec, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(spec, "a number", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _wrong_type(spec, "a finite number", value)
    _check_range(spec, value)
    return value


def _check_seed(spec: InputSpec, value: Any) -> int:
    result = _check_integer(spec, value)
    if not 0 <= result <= SEED_MAX:
        raise InvalidWorkflowInput(f"input {spec.key} must be between 0 and {SEED_MAX}")
    return result


def _check_boolean(spec: InputSpec, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(spec, "a boolean", value)
    return value


def _check_enum(spec: InputSpec, value: Any) -> Any:
    if not any(type(value) is type(option) and value == option for option in spec.options):
        allowed = ", ".join(repr(o) for o in spec.options)
        raise InvalidWorkflowInput(f"input {spec.key} must be one of {allowed} (got {value!r})")
    return value


_SCALAR_CHECKS = {
    "string": _check_string,
    "text": _check_string,
    "integer": _check_integer,
    "number": _check_number,
    "seed": _check_seed,
    "boolean": _check_boolean,
    "enum": _check_enum,
}


def _check_range(spec: InputSpec, value: float) -> None:
    if spec.min is not None and value < spec.min:
        raise InvalidWorkflowInput(f"input {spec.key} must be >= {_num(spec.min)} (got {value})")
    if spec.max is not None and value > spec.max:
        raise InvalidWorkflowInput(f"input {spec.key} must be <= {_num(spec.max)} (got {value})")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _wrong_type(spec: InputSpec, expected: str, value: Any) -> InvalidWorkflowInput:
    return InvalidWorkflowInput(
        f"input {spec.key} must be {expected}, got {_json_type(value)} {_preview(value)}"
    )


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_media(spec: InputSpec, value: Any) -> tuple[MediaRef, ...]:
    """Validate a media input (one value, or a list when ``multiple``)."""
    if isinstance(value, list):
        if not spec.multiple:
            raise InvalidWorkflowInput(f"input {spec.key} takes one {spec.type}, not a list")
        if not value:
            raise InvalidWorkflowInput(f"input {spec.key} must not be an empty list")
        if spec.max_items is not None and len(value) > spec.max_items:
            raise InvalidWorkflowInput(f"input {spec.key} takes at most {spec.max_items} items")
        return tuple(
            _check_one_media(spec, item, f"{spec.key}[{i}]") for i, item in enumerate(value)
        )
    return (_check_one_media(spec, value, spec.key),)


def _check_one_media(spec: InputSpec, value: Any, label: str) -> MediaRef:
    try:
        ref = parse_media_value(value)
    except MediaValueError as exc:
        raise InvalidWorkflowInput(f"input {label} {exc}") from exc
    if ref.source is MediaSource.DATA:
        _check_inline_bytes(spec, ref, label)
    return ref


def _check_inline_bytes(spec: InputSpec, ref: MediaRef, label: str) -> None:
    check_media_bytes(spec, ref.data or b"", ref.mime_type, label)


def check_media_bytes(spec: InputSpec, data: bytes, declared: str | None, label: str) -> None:
    """Check media bytes (inline, or fetched from a URL) against the input's type and limits.

    Raises:
        InvalidWorkflowInput: naming ``label``.
    """
    limit = spec.max_size_bytes or DEFAULT_MAX_MEDIA_BYTES
    if len(data) > limit:
        raise InvalidWorkflowInput(f"input {label} is {len(data)} bytes; the limit is {limit}")
    sniffed = sniff_mime(data)
    if spec.type != "file" and (sniffed is None or not sniffed.startswith(spec.type + "/")):
        raise InvalidWorkflowInput(
            f"input {label} must be {spec.type} data; its bytes are {sniffed or 'not a known format'}"
        )
    if sniffed and declared and sniffed != declared and spec.type != "file":
        raise InvalidWorkflowInput(f"input {label} declares {declared} but its bytes are {sniffed}")
    if spec.accept and (sniffed or declared) not in spec.accept:
        raise InvalidWorkflowInput(
            f"input {label} has type {sniffed or declared}; accepted: {', '.join(spec.accept)}"
        )


def defaults(specs: tuple[InputSpec, ...]) -> dict[str, Any]:
    """The manifest's default inputs (what the market quote assumes)."""
    return {spec.key: spec.default_value for spec in specs}


def input_to_wire(spec: InputSpec) -> dict[str, Any]:
    """The public manifest entry (the binding stays internal)."""
    return {
        "key": spec.key,
        "display_name": spec.display_name or spec.key,
        "description": spec.description,
        "type": spec.type,
        "required": spec.required,
        "default_value": spec.default_value,
        "options": list(spec.options) if spec.type == "enum" else None,
        "min": spec.min,
        "max": spec.max,
        "step": spec.step,
        "max_length": spec.max_length,
        "multiple": spec.multiple,
        "max_items": spec.max_items,
        "accept": list(spec.accept) or None,
        "max_size_bytes": spec.max_size_bytes,
    }


def output_to_wire(spec: OutputSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "display_name": spec.display_name or spec.key,
        "type": spec.type,
        "multiple": spec.multiple,
    }


def input_to_json(spec: InputSpec) -> dict[str, Any]:
    """Storage form of an input spec (binding included)."""
    return {
        **input_to_wire(spec),
        "options": list(spec.options),
        "accept": list(spec.accept),
        "binding": {"node_id": spec.binding.node_id, "input_name": spec.binding.input_name},
    }


def input_from_json(data: Mapping[str, Any]) -> InputSpec:
    fields = {k: v for k, v in data.items() if k not in {"binding", "options", "accept"}}
    return InputSpec(
        **fields,
        binding=Binding(**data["binding"]),
        options=tuple(data.get("options") or ()),
        accept=tuple(data.get("accept") or ()),
    )


def output_to_json(spec: OutputSpec) -> dict[str, Any]:
    return {**output_to_wire(spec), "node_id": spec.node_id}


def output_from_json(data: Mapping[str, Any]) -> OutputSpec:
    return OutputSpec(**data)
