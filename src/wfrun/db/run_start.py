"""A claimed run's start (or re-dispatch) in one statement (PostgreSQL): the run's conditional
move, its ``started`` log line and, for a start from the queue, its outbox row —
data-modifying CTEs (``db.run_ctes``), built once per shape (the columns it sets, whether it
publishes, the event names) with every value bound at execution. ``services.run_starts``
decides the values; SQLite takes the same steps one statement each. The caller owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update

from wfrun.db.database import Connection
from wfrun.db.rows import record
from wfrun.db.run_ctes import log_line, outbox_row
from wfrun.db.runs import Run
from wfrun.db.schema import UTCDateTime, run_events, runs

_Shape = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
"""The run columns set and the outbox event names by family (none: nothing published)."""
_STATEMENTS: dict[_Shape, Any] = {}
_KEPT = 64


def supported(conn: Connection) -> bool:
    """Whether :func:`start_in_one` works on this connection's database."""
    return conn.dialect.name == "postgresql"


async def start_in_one(
    conn: Connection,
    run_id: str,
    *,
    current: str,
    values: Mapping[str, Any],
    message: str,
    event_types: Mapping[str, str],
    now: datetime,
) -> Run | None:
    """Move the run from ``current`` with ``values``, log ``message`` and (``event_types``
    not empty) publish the change; the run as written, or None when it was no longer at
    ``current`` and nothing changed."""
    key = (tuple(sorted(values)), tuple(event_types.items()))
    query = _STATEMENTS.get(key)
    if query is None:
        if len(_STATEMENTS) >= _KEPT:
            _STATEMENTS.clear()
        query = _STATEMENTS[key] = _statement(key)
    params = {"start_run_id": run_id, "start_current": current, "start_now": now}
    params |= {"start_message": message} | {f"run_{k}": v for k, v in values.items()}
    row = (await conn.execute(query, params)).mappings().first()
    return None if row is None else record(Run, {c.name: row[c.name] for c in runs.c})


def _statement(key: _Shape) -> Any:
    columns, events = key
    now = bindparam("start_now", type_=UTCDateTime())
    current = bindparam("start_current", type_=runs.c.status.type)
    moved = (
        update(runs)
        .where(
            runs.c.id == bindparam("start_run_id", type_=runs.c.id.type), runs.c.status == current
        )
        .values(**{name: bindparam(f"run_{name}", type_=runs.c[name].type) for name in columns})
        .returning(*runs.c)
        .cte("moved")
    )
    message = bindparam("start_message", type_=run_events.c.message.type)
    steps = [log_line(moved, now=now, event_type="started", message=message).cte("logged")]
    if events:
        published = outbox_row(moved, now=now, previous=current, event_types=dict(events))
        steps.append(published.cte("published"))
    return select(moved).add_cte(*steps)
