"""A running run's fenced progress write and the log lines gathered with it (``db.runs``'
fencing: only while the run is ``running`` under the writer's attempt). Callers own the
transaction.

On PostgreSQL it is one statement (a data-modifying CTE: the lines are written only when the
progress matched), built once per shape (the columns it sets, how many lines and of which
columns) with every value bound at execution: building it and its cache key anew was the
largest share of a draining worker's CPU after the ending's (issue 17's profile, 15 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, exists, insert, select, update

from wfrun.db.database import Connection
from wfrun.db.run_ctes import param_rows
from wfrun.db.runs import add_events
from wfrun.db.schema import run_events, runs
from wfrun.domain.runs import RunStatus

_Shape = tuple[tuple[str, ...], int, tuple[str, ...]]
"""The run columns set, the number of log lines and their columns."""
_STATEMENTS: dict[_Shape, Any] = {}
_KEPT = 64


@dataclass(frozen=True, slots=True)
class Progressed:
    """A fenced progress write that matched: whether the user has asked to cancel."""

    cancel_requested: bool


async def record_progress(
    conn: Connection,
    run_id: str,
    attempt: int,
    values: dict[str, Any],
    events: Sequence[dict[str, Any]] = (),
) -> Progressed | None:
    """Fenced progress write, with the log lines ``events`` (rows of ``run_events``, all with
    the same columns) written only when it matched; None when fenced out."""
    postgresql = conn.dialect.name == "postgresql"
    count = len(events) if postgresql else 0  # SQLite: no data-modifying CTEs
    key = (tuple(sorted(values)), count, tuple(events[0]) if count else ())
    query = _STATEMENTS.get(key)
    if query is None:
        if len(_STATEMENTS) >= _KEPT:
            _STATEMENTS.clear()
        query = _STATEMENTS[key] = _statement(key)
    params = {"fence_run_id": run_id, "fence_attempt": attempt}
    params |= {f"set_{name}": value for name, value in values.items()}
    if postgresql:
        for i, event in enumerate(events):
            params |= {f"line{i}_{name}": value for name, value in event.items()}
    row = (await conn.execute(query, params)).first()
    if row is not None and not postgresql:
        await add_events(conn, list(events))
    return None if row is None else Progressed(cancel_requested=row[0] is not None)


def _statement(key: _Shape) -> Any:
    columns, count, names = key
    progressed = (
        update(runs)
        .where(
            runs.c.id == bindparam("fence_run_id", type_=runs.c.id.type),
            runs.c.attempt == bindparam("fence_attempt", type_=Integer()),
            runs.c.status == RunStatus.RUNNING,
        )
        .values(**{name: bindparam(f"set_{name}", type_=runs.c[name].type) for name in columns})
        .returning(runs.c.cancel_requested_at)
    )
    if not count:
        return progressed
    matched = progressed.cte("progressed")
    lines = param_rows(count, [run_events.c[name] for name in names], prefix="line")
    logged = insert(run_events).from_select(
        list(names), select(lines).where(exists(select(matched.c.cancel_requested_at)))
    )
    return select(matched.c.cancel_requested_at).add_cte(logged.cte("logged"))
