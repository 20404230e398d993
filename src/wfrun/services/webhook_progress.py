"""Opt-in progress webhooks (``run.progress`` / ``model_run.progress``).

Progress is not a status change, so it is not in the outbox: it is read from the run log's
progress rows (``run_events`` with a percent) past a cursor, only for accounts with an endpoint
that asked for it, and throttled to one delivery per 500 ms per run and endpoint (a row
inside the window is dropped: the next one, or the run's ending, carries newer state). The
body is the usual ``{"type", "timestamp", "data"}`` with ``data`` the run's ``run/info`` plus
``progress: {percent, node_id, message}``. ``callback_url`` receivers get no progress.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import runs as runs_db
from wfrun.db import webhook_deliveries as deliveries_db
from wfrun.db import webhook_endpoints as endpoints_db
from wfrun.db import webhook_progress as progress_db
from wfrun.db.database import Connection, Database
from wfrun.db.webhook_endpoints import Endpoint
from wfrun.db.webhook_progress import ProgressRow
from wfrun.services.webhook_delivery import Render, body, delivery_row

THROTTLE = timedelta(milliseconds=500)


async def fan_out_progress(db: Database, render: Render, *, batch: int = 500) -> int:
    """Deliveries for new progress rows of subscribed accounts; answers how many rows."""
    async with db.one_statement() as conn:  # the usual case: nobody listens (one statement)
        if await progress_db.skip_unheard(conn):
            return 0
    async with db.transaction() as conn:  # a look without the (SQLite) write lock first
        if (await progress_db.cursor(conn) or 0) >= await progress_db.latest_event_id(conn):
            return 0
    async with db.transaction(write=True) as conn:
        accounts = await progress_db.subscribed_accounts(conn)
        position = await progress_db.cursor(conn) or 0
        rows = await progress_db.progress_after(conn, position, accounts, batch) if accounts else []
        if rows:
            await _deliver(conn, rows, render)
            await progress_db.move_cursor(conn, rows[-1].id)
        else:  # nothing for anyone: start from here (history is never replayed)
            await progress_db.move_cursor(conn, await progress_db.latest_event_id(conn))
    return len(rows)


async def _deliver(conn: Connection, rows: list[ProgressRow], render: Render) -> None:
    now = utcnow()
    run_ids = sorted({row.run_id for row in rows})
    endpoints = await endpoints_db.enabled_endpoints(conn, sorted({r.account_id for r in rows}))
    runs = await runs_db.find_runs(conn, run_ids)
    last = await progress_db.last_progress(conn, run_ids)
    deliveries: list[dict[str, Any]] = []
    for row in rows:
        event_type = ("model_run" if row.family == "model" else "run") + ".progress"
        for endpoint in _subscribers(endpoints, row.account_id, event_type):
            target = f"endpoint:{endpoint.id}"
            if not _due(last, (row.run_id, target), row.at):
                continue
            data = render(runs[row.run_id]) | {"progress": _progress(row)}
            deliveries.append(
                delivery_row(
                    row.account_id, row.run_id, event_type, body(event_type, row.at, data), now
                )
                | {"target": target, "endpoint_id": endpoint.id, "run_event_id": row.id}
            )
    await deliveries_db.insert_deliveries(conn, deliveries, source="run_event_id")


def _subscribers(endpoints: list[Endpoint], account_id: str, event_type: str) -> list[Endpoint]:
    return [e for e in endpoints if e.account_id == account_id and event_type in e.events]


def _due(last: dict[tuple[str, str], datetime], key: tuple[str, str], at: datetime) -> bool:
    previous = last.get(key)
    if previous is not None and at - previous < THROTTLE:
        return False
    last[key] = at
    return True


def _progress(row: ProgressRow) -> dict[str, Any]:
    return {"percent": row.progress_percent, "node_id": row.node_id, "message": row.message}
