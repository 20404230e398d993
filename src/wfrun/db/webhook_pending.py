"""What the webhook loop has to do, read in one statement (issue 17): outbox rows not yet
fanned out, progress rows past the progress cursor, deliveries due. Most rounds find nothing,
and this look costs one round trip instead of a transaction per kind of work (on SQLite it
takes no write lock). Callers own the transaction; nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select

from wfrun.db.database import Connection
from wfrun.db.schema import outbox_events, run_events
from wfrun.db.webhook_deliveries import LOW_WATER, due_deliveries
from wfrun.db.webhook_progress import PROGRESS_CURSOR, position
from wfrun.db.webhook_schema import webhook_fanouts


@dataclass(frozen=True, slots=True)
class Pending:
    outbox: bool
    """Outbox rows no fan-out has handled (``webhook_deliveries.unfanned``)."""
    progress: bool
    """``run_events`` rows past the progress cursor (``webhook_progress.fan_out_progress``)."""
    due: bool
    """Deliveries a claim would take now (``webhook_deliveries.claim_due``)."""


async def pending(conn: Connection, now: datetime) -> Pending:
    unfanned = exists().where(
        outbox_events.c.id > position(LOW_WATER),
        ~exists().where(webhook_fanouts.c.outbox_event_id == outbox_events.c.id),
    )
    progress = exists().where(run_events.c.id > position(PROGRESS_CURSOR))
    due = exists(due_deliveries(now))
    row = (
        await conn.execute(
            select(unfanned.label("outbox"), progress.label("progress"), due.label("due"))
        )
    ).one()
    return Pending(bool(row.outbox), bool(row.progress), bool(row.due))
