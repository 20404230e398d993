"""Reading a caller's run stream in pages, for the live event stream.

The stream's rows (``db.stream``) are status changes and log lines in one commit-ordered
sequence. A page also carries the runs that ended within it, as they are now, because the
final events of a run (its outputs, its ``run/info``) are rendered from the run itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wfrun.db import runs as runs_db
from wfrun.db import stream as stream_db
from wfrun.db.database import Database
from wfrun.db.runs import Run
from wfrun.db.stream import StreamItem
from wfrun.domain.runs import RunStatus, is_terminal
from wfrun.errors import RunNotFound
from wfrun.services.accounts import Principal


@dataclass(frozen=True)
class StreamPage:
    items: list[StreamItem]
    ended: dict[str, Run] = field(default_factory=dict)
    """The runs whose terminal change is in ``items``, by id."""


def ends_run(item: StreamItem) -> bool:
    """Whether ``item`` is the change that ended its run."""
    return item.status is not None and is_terminal(RunStatus(item.status))


async def find_run(db: Database, principal: Principal, run_id: str) -> Run:
    """The caller's run (workflow or model run) to stream.

    Raises:
        RunNotFound: no such run for the caller.
    """
    async with db.transaction() as conn:
        run = await runs_db.find_run(conn, run_id, account_id=principal.account_id)
    if run is None:
        raise RunNotFound(f"run {run_id} does not exist")
    return run


async def read_page(
    db: Database, principal: Principal, *, run_id: str | None, after: int, limit: int
) -> StreamPage:
    """The caller's next ``limit`` stream rows after row ``after`` (one run's, or all)."""
    async with db.transaction() as conn:
        items = await stream_db.read_after(
            conn, account_id=principal.account_id, run_id=run_id, after=after, limit=limit
        )
        ended: dict[str, Run] = {}
        for item in items:
            if ends_run(item) and item.run_id not in ended:
                run = await runs_db.find_run(conn, item.run_id, account_id=principal.account_id)
                if run is not None:
                    ended[run.id] = run
    return StreamPage(items, ended)
