"""The db layer's typed records cannot drift from the schema: a table's record has exactly its
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
import wfrun.queue
from wfrun.db import schema
from wfrun.db.accounts import Account, ApiKey
from wfrun.db.assets import Asset
from wfrun.db.instances import Instance, LoadedInstance
from wfrun.db.outbox import OutboxEvent
from wfrun.db.real_person import Verification
from wfrun.db.runs import Run, RunEvent
from wfrun.db.workflows import MarketItem, Revision, Workflow, WorkflowRevision
from wfrun.queue.broker import Job

TABLE_RECORDS: list[tuple[type[Any], Table]] = [
    (Account, schema.accounts),
    (ApiKey, schema.api_keys),
    (Workflow, schema.workflows),
    (Revision, schema.revisions),
    (Asset, schema.assets),
    (Instance, schema.engine_instances),
    (Verification, schema.real_person_verifications),
    (Run, schema.runs),
    (RunEvent, schema.run_events),
    (OutboxEvent, schema.outbox_events),
    (Job, schema.jobs),
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


def _db_records() -> list[type[Any]]:
    found = []
    packages = [(wfrun.db.__path__, "wfrun.db."), (wfrun.queue.__path__, "wfrun.queue.")]
    for info in (i for path, prefix in packages for i in pkgutil.iter_modules(path, prefix)):
        if info.ispkg:
            continue  # migrations: run by Alembic, not imported
        module: types.ModuleType = importlib.import_module(info.name)
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if is_dataclass(cls) and cls.__module__ == module.__name__
        ]
    return found


def test_every_db_record_is_a_frozen_slotted_dataclass():
    records = _db_records()
    assert {*(cls for cls, _ in TABLE_RECORDS), LoadedInstance} <= set(records)
    loose = [
        cls.__qualname__
        for cls in records
        if not cls.__dataclass_params__.frozen or "__slots__" not in cls.__dict__
    ]
    assert loose == []
