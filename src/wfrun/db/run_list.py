"""The workflow run list (``run/list`` and the consoles' run history): newest first, a page by
number or after a keyset position, with the count of matching runs capped. Callers own the
transaction."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Integer, Select, bindparam, func, select, tuple_

from wfrun.db.database import Connection
from wfrun.db.rows import records
from wfrun.db.runs import Run
from wfrun.db.schema import runs
from wfrun.domain.run_cursor import RunPosition

LIST_COUNT_CAP = 1_000
"""``list_runs`` counts matching runs up to this many (or up to one past the page asked for,
when that is further): an exact count over a long history is a scan (219 ms at 1M runs);
1,000 newest entries of ``ix_runs_account_family_created`` are an index-only range (0.3 ms at
1M runs; 10,000 took 1.7 ms vacuumed, 13 ms with heap visits)."""


async def list_runs(
    conn: Connection,
    *,
    account_id: str | None,
    workflow_id: str | None,
    status: str | None,
    limit: int,
    offset: int = 0,
    after: RunPosition | None = None,
) -> tuple[list[Run], int]:
    """Workflow runs, newest first (``created_at``, then id), with the count of matching runs
    capped at :data:`LIST_COUNT_CAP` (or one past this page when that is more: a next page
    exists); every account's when ``account_id`` is None (the console's operator view). The
    page starts at ``offset`` or strictly after ``after`` (keyset: an index range, however
    deep); the count always starts at the newest run. One statement: the count rides along the
    page as a scalar subquery (index ``ix_runs_account_family_created``); only a page past the
    end counts on its own."""
    shape = _ListShape(account_id is not None, bool(workflow_id), bool(status), after is not None)
    page_query, count_query = _list_statements(shape)
    values: dict[str, Any] = {
        "account_id": account_id,
        "workflow_id": workflow_id,
        "status": status,
        "after_at": None if after is None else after.created_at,
        "after_id": None if after is None else after.run_id,
        "cap": max(LIST_COUNT_CAP, offset + limit + 1),
        "limit": limit,
        "offset": offset,
    }
    page = (await conn.execute(page_query, values)).mappings().all()
    if page:
        return records(Run, page), int(page[0]["wfrun_total"])
    return [], int((await conn.execute(count_query, values)).scalar_one())


@dataclass(frozen=True, slots=True)
class _ListShape:
    """Which of :func:`list_runs`'s filters a call uses."""

    account: bool
    workflow: bool
    status: bool
    after: bool


def _count_of(name: str) -> BindParameter[int]:
    return bindparam(name, type_=Integer())


@functools.cache
def _list_statements(shape: _ListShape) -> tuple[Select[Any], Select[Any]]:
    """The page and the count-only statements of one shape, built once with their values
    bound by name (building and cache-keying a 50-column statement per request cost more CPU
    than running it)."""
    named = {
        "account_id": (shape.account, runs.c.account_id),
        "workflow_id": (shape.workflow, runs.c.workflow_id),
        "status": (shape.status, runs.c.status),
    }
    conditions = [runs.c.family == "workflow"]
    conditions += [column == bindparam(name) for name, (used, column) in named.items() if used]
    newest = (runs.c.created_at.desc(), runs.c.id.desc())  # steers the count to the index
    capped = select(runs.c.id).where(*conditions).order_by(*newest).limit(_count_of("cap"))
    total = select(func.count()).select_from(capped.subquery()).scalar_subquery()
    page = select(runs, total.label("wfrun_total")).where(*conditions)
    if shape.after:  # (created_at, id) < after: strictly older in the newest-first order
        at = bindparam("after_at", type_=runs.c.created_at.type)
        run_id = bindparam("after_id", type_=runs.c.id.type)
        page = page.where(tuple_(runs.c.created_at, runs.c.id) < tuple_(at, run_id))
    page = page.order_by(*newest).limit(_count_of("limit")).offset(_count_of("offset"))
    return page, select(total)
