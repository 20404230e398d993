"""The run outbox: one row per run state change, appended in the transaction that made the
change (by ``services/run_changes``), read by whatever tells the world (event streams,
webhooks, metrics). Rows are never updated; ``id`` orders them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from wfrun.db.database import Connection
from wfrun.db.rows import records
from wfrun.db.schema import outbox_events


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    run_id: str
    account_id: str
    event_type: str
    """``run.queued``, ``run.started``, ``run.succeeded`` … (``model_run.*`` for model runs)."""
    status: str
    previous_status: str | None
    attempt: int
    data: dict[str, Any]
    created_at: datetime


async def append_change(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(outbox_events), values)


async def for_run(conn: Connection, run_id: str) -> list[OutboxEvent]:
    query = (
        select(outbox_events).where(outbox_events.c.run_id == run_id).order_by(outbox_events.c.id)
    )
    return records(OutboxEvent, (await conn.execute(query)).mappings())
