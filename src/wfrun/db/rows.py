"""Typed records from rows: ``db/`` hands frozen dataclasses to the layers above it.

Each db module declares the record of its table next to its queries; :func:`record`
builds one from a row, taking exactly the dataclass's fields (a row may carry more columns,
e.g. a join). A test checks every record against its table so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import RowMapping

T = TypeVar("T")
Row: TypeAlias = RowMapping | Mapping[str, Any]
"""A row by column name: SQLAlchemy's ``RowMapping`` or a plain dict of column values."""


_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return names


def record(cls: type[T], row: Row) -> T:
    """The ``cls`` record of ``row`` (by column name)."""
    return cls(**{name: row[name] for name in _field_names(cls)})


def record_or_none(cls: type[T], row: Row | None) -> T | None:
    return None if row is None else record(cls, row)


def records(cls: type[T], rows: Iterable[Row]) -> list[T]:
    return [record(cls, row) for row in rows]
