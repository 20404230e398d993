"""Printing for the CLI: human text by default, JSON with --json."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from wfrun.clock import to_rfc3339
from wfrun.domain.money import format_amount

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

MONEY_COLUMNS = {
    "available",
    "frozen",
    "amount",
    "quote_amount",
    "quote_external",
    "final_amount",
    "released_amount",
    "compute_cost",
    "external_model_cost",
    "absorbed_external_cost",
    "charged",
    "refunded",
}


def plain(record: DataclassInstance, *, omit: Collection[str] = ()) -> dict[str, Any]:
    """A record's fields (but ``omit``) as JSON-friendly values, money as 8-decimal strings."""
    out: dict[str, Any] = {}
    for key in (f.name for f in fields(record) if f.name not in omit):
        value = getattr(record, key)
        if isinstance(value, datetime):
            value = to_rfc3339(value)
        elif key in MONEY_COLUMNS and isinstance(value, int):
            value = format_amount(value)
        out[key] = value
    return out


def emit(data: Any, *, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text if text is not None else _table(data))


def _table(data: Any) -> str:
    rows = data if isinstance(data, list) else [data]
    return "\n".join("  ".join(f"{k}={v}" for k, v in row.items()) for row in rows) or "(none)"
