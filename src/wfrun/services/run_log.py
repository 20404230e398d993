"""A run's log (``run_events``): the lines ``run/execution`` shows, written inside the caller's
transaction. State changes are also published to the outbox, by :mod:`run_changes`."""

from __future__ import annotations

from datetime import datetime

from wfrun.db import runs as runs_db
from wfrun.db.database import Connection
from wfrun.db.runs import Run
from wfrun.db.stream import note_change


async def log_event(
    conn: Connection,
    run: Run,
    now: datetime,
    kind: str,
    message: str,
    *,
    level: str = "info",
    node_id: str | None = None,
    percent: int | None = None,
    attempt: int | None = None,
) -> None:
    """Append one line to the run's log (under ``attempt``, else the run's current one)."""
    await runs_db.add_events(
        conn,
        [
            {
                "run_id": run.id,
                "attempt": run.attempt if attempt is None else attempt,
                "at": now,
                "event_type": kind,
                "level": level,
                "message": message,
                "node_id": node_id,
                "progress_percent": percent,
            }
        ],
    )
    note_change(conn, run.account_id)
