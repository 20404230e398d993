"""The store's typed records cannot drift from the schema: a table's record has exactly its
columns, in order, optional exactly where the column is nullable; every record is frozen."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from dataclasses import fields, is_dataclass
from typing import Any, get_args, get_type_hints

import pytest
from sqlalchemy import Table

import wfrun.db
from wfrun.db import schema
from wfrun.db.accounts import Account, ApiKey
from wfrun.db.assets import Asset
from wfrun.db.instances import Instance, LoadedInstance
from wfrun.db.real_person import Verification
from wfrun.db.workflows import MarketItem, Revision, Workflow, WorkflowRevision

TABLE_RECORDS: list[tuple[type[Any], Table]] = [
    (Account, schema.accounts),
    (ApiKey, schema.api_keys),
    (Workflow, schema.workflows),
    (Revision, schema.revisions),
    (Asset, schema.assets),
    (Instance, schema.engine_instances),
    (Verification, schema.real_person_verifications),
]
TABLE_NAMES = [table.name for _, table in TABLE_RECORDS]


def _names(cls: type[Any]) -> list[str]:
    return [f.name for f in fields(cls)]


def _optional(cls: type[Any]) -> dict[str, bool]:
    return {name: type(None) in get_args(hint) for name, hint in get_type_hints(cls).items()}


@pytest.mark.parametrize(("cls", "table"), TABLE_RECORDS, ids=TABLE_NAMES)
def test_a_table_record_has_exactly_its_tables_columns(cls: type[Any], table: Table):
    assert _names(cls) == list(table.c.keys())


@pytest.mark.parametrize(("cls", "table"), TABLE_RECORDS, ids=TABLE_NAMES)
def test_a_field_is_optional_exactly_where_its_column_is_nullable(cls: type[Any], table: Table):
    assert _optional(cls) == {c.name: bool(c.nullable) for c in table.c}


def test_views_extend_their_records():
    assert _names(LoadedInstance) == [*_names(Instance), "busy"]
    assert _names(WorkflowRevision)[: len(_names(MarketItem))] == _names(MarketItem)


def _store_records() -> list[type[Any]]:
    found = []
    for info in pkgutil.iter_modules(wfrun.db.__path__, "wfrun.db."):
        if info.ispkg:
            continue  # migrations: run by Alembic, not imported
        module: types.ModuleType = importlib.import_module(info.name)
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if is_dataclass(cls) and cls.__module__ == module.__name__
        ]
    return found


def test_every_store_record_is_a_frozen_slotted_dataclass():
    records = _store_records()
    assert {*(cls for cls, _ in TABLE_RECORDS), LoadedInstance} <= set(records)
    loose = [
        cls.__qualname__
        for cls in records
        if not cls.__dataclass_params__.frozen or "__slots__" not in cls.__dict__
    ]
    assert loose == []
