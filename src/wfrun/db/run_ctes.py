"""The run-log line and the outbox row of a run change, as ``INSERT … SELECT`` from a
data-modifying CTE's ``RETURNING runs.*`` (PostgreSQL): a change, its log line and its outbox
row in one statement (``queue.claim_start``, ``db.run_start``, ``db.settlements``). They write what
``services.run_log.log_event`` and ``services.run_changes.publish_change`` write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    Insert,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
)

from wfrun.db.schema import UTCDateTime, outbox_events, run_events


def _at(now: datetime | BindParameter[datetime]) -> Any:
    """``now`` as a timestamp expression (a bound parameter already, or bound here)."""
    return _bound(now, UTCDateTime())


def _bound(value: Any, type_: Any) -> Any:
    """``value`` as an expression: a bound parameter already (a statement built once, its
    values bound at execution), or bound here as a literal of ``type_``."""
    return value if isinstance(value, BindParameter) else literal(value, type_)


def log_line(
    moved: Any,
    *,
    now: datetime | BindParameter[datetime],
    event_type: str | BindParameter[str],
    message: Any,
    level: str | BindParameter[str] = "info",
    node_id: str | BindParameter[str] | None = None,
    percent: Any = None,
) -> Insert:
    """The run log's line for the run ``moved`` returns (under its attempt)."""
    return insert(run_events).from_select(
        [
            "run_id",
            "attempt",
            "at",
            "event_type",
            "level",
            "message",
            "node_id",
            "progress_percent",
        ],
        select(
            moved.c.id,
            moved.c.attempt,
            _at(now),
            _bound(event_type, run_events.c.event_type.type),
            _bound(level, run_events.c.level.type),
            message,
            _bound(node_id, run_events.c.node_id.type),
            literal(None, run_events.c.progress_percent.type) if percent is None else percent,
        ),
    )


def outbox_row(
    moved: Any,
    *,
    now: datetime | BindParameter[datetime],
    previous: str | BindParameter[str] | None,
    event_types: Mapping[str, str],
) -> Insert:
    """The change's outbox row; ``event_types`` names its event by run family (the first
    one also for any other family)."""
    names = list(event_types.items())
    event_type = case(
        *[(moved.c.family == family, literal(name)) for family, name in names],
        else_=literal(names[0][1]),
    )
    data = func.jsonb_build_object(
        literal_column("'family'"),
        moved.c.family,
        literal_column("'workflow_id'"),
        moved.c.workflow_id,
        literal_column("'error_code'"),
        moved.c.error_code,
        literal_column("'final_amount'"),
        moved.c.final_amount,
    )
    columns = ["run_id", "account_id", "event_type", "status", "previous_status", "attempt"]
    return insert(outbox_events).from_select(
        [*columns, "data", "created_at"],
        select(
            moved.c.id,
            moved.c.account_id,
            event_type,
            moved.c.status,
            _bound(previous, outbox_events.c.previous_status.type),
            moved.c.attempt,
            data,
            _at(now),
        ),
    )


def param_rows(count: int, columns: Sequence[Column[Any]], prefix: str = "posting") -> Any:
    """``count`` rows of bound parameters named ``{prefix}{i}_{column}`` (one ``UNION ALL``
    arm a row), named and typed as ``columns``: for a statement built once and bound at
    execution (``db.settlements``)."""
    arms = [
        select(*[bindparam(f"{prefix}{i}_{c.name}", type_=c.type).label(c.name) for c in columns])
        for i in range(count)
    ]
    return (arms[0] if len(arms) == 1 else union_all(*arms)).subquery("rows")
