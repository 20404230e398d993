"""Publishing run state changes: one outbox row per change, in the transaction that made it.

Three places change a run's status — submit (→ queued), the claim that starts it (→ running)
and :func:`wfrun.services.run_endings.end_run` (→ succeeded | failed | cancelled) — and each
calls :func:`publish_change` right after its conditional update matched, or on PostgreSQL
writes the same row in the update's own statement (``db.run_ctes.outbox_row``:
``queue.claim_start``, ``db.run_start``, ``db.settlements``). Nothing else writes the outbox, so a consumer sees every change exactly once, and never one that rolled back. Each
change is also a line of the process log once its transaction commits (``ops_log``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wfrun.db import outbox
from wfrun.db.database import Connection
from wfrun.db.runs import Run
from wfrun.db.stream import note_change
from wfrun.domain.runs import RunStatus, change_event_type
from wfrun.services import ops_log


async def publish_change(
    conn: Connection, run: Run, *, previous: RunStatus | None, now: datetime
) -> None:
    """Record that ``run`` (as just written) moved from ``previous`` to its status."""
    await outbox.append_change(conn, change_row(run, previous=previous, now=now))
    announce_change(conn, run, previous=previous)


def change_row(run: Run, *, previous: RunStatus | None, now: datetime) -> dict[str, Any]:
    """The outbox row of ``run``'s change (for a caller that inserts it with other rows)."""
    return {
        "run_id": run.id,
        "account_id": run.account_id,
        "event_type": change_event_type(run.family, run.status),
        "status": run.status.value,
        "previous_status": None if previous is None else previous.value,
        "attempt": run.attempt,
        "data": {
            "family": run.family,
            "workflow_id": run.workflow_id,
            "error_code": run.error_code,
            "final_amount": run.final_amount,
        },
        "created_at": now,
    }


def announce_change(conn: Connection, run: Run, *, previous: RunStatus | None) -> None:
    """The in-process wake-up and process log line of a change whose row is written."""
    note_change(conn, run.account_id)
    ops_log.status_changed(conn, run, previous=previous)
