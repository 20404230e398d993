"""A run's ending in one statement (PostgreSQL): the run's conditional move to its terminal
status, its freeze closed, the ledger entry and its postings, the account's balance, its open
jobs closed, the log line and the outbox row — data-modifying CTEs, each step only when the
one before it matched. ``services.run_endings`` decides every value (and locks the run's jobs
first, lock order job → run → freeze → account); SQLite, without data-modifying CTEs, takes
the same steps one statement each. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, literal, select, true, update

from wfrun.db.database import Connection
from wfrun.db.rows import record
from wfrun.db.run_ctes import bound_rows, log_line, outbox_row
from wfrun.db.runs import Run
from wfrun.db.schema import accounts, freezes, jobs, ledger_entries, ledger_postings, runs


@dataclass(frozen=True, slots=True)
class EndPlan:
    """Every value of an ending, decided by the caller."""

    run_id: str
    current: str
    attempt: int | None
    values: Mapping[str, Any]
    freeze_status: str
    entry: Mapping[str, Any]
    """The ledger entry's ``id``, ``kind`` and ``memo``."""
    postings: Sequence[tuple[str, int]]
    """(bucket, amount) of the account's postings."""
    deltas: tuple[int, int]
    """The account's (available, frozen) change."""
    open_jobs: Collection[str]
    job_values: Mapping[str, Any]
    line: Mapping[str, Any]
    """The log line's ``event_type``, ``message``, ``level``, ``node_id`` and whether it
    shows the run's percentage (``with_percent``)."""
    event_types: Mapping[str, str]
    """The outbox event's name by run family."""


@dataclass(frozen=True, slots=True)
class Ended:
    """The run as ended, and the freeze the statement closed (None: none was open)."""

    run: Run
    freeze_id: str | None
    freeze_account_id: str | None
    freeze_amount: int | None


def supported(conn: Connection) -> bool:
    """Whether :func:`end_in_one` works on this connection's database."""
    return conn.dialect.name == "postgresql"


async def end_in_one(conn: Connection, plan: EndPlan, *, now: datetime) -> Ended | None:
    """Carry out ``plan`` (module doc); None when the run was no longer at ``plan.current``
    (or under ``plan.attempt``) and nothing changed."""
    moved_update = update(runs).where(runs.c.id == plan.run_id, runs.c.status == plan.current)
    if plan.attempt is not None:
        moved_update = moved_update.where(runs.c.attempt == plan.attempt)
    moved = moved_update.values(**plan.values).returning(*runs.c).cte("moved")
    did_move = exists(select(moved.c.id))
    closed = (
        update(freezes)
        .where(freezes.c.run_id == plan.run_id, freezes.c.status == "frozen", did_move)
        .values(status=plan.freeze_status, resolved_at=now)
        .returning(freezes.c.id, freezes.c.account_id, freezes.c.amount)
        .cte("closed")
    )
    steps = [*_money(plan, closed, now), _jobs(plan, did_move), *_records(plan, moved, now)]
    query = (
        select(
            moved,
            closed.c.id.label("freeze_id"),
            closed.c.account_id.label("freeze_account_id"),
            closed.c.amount.label("freeze_amount"),
        )
        .select_from(moved.outerjoin(closed, true()))
        .add_cte(*[step.cte(f"step{i}") for i, step in enumerate(steps)])
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    run = record(Run, {c.name: row[c.name] for c in runs.c})
    return Ended(run, row["freeze_id"], row["freeze_account_id"], row["freeze_amount"])


def _money(plan: EndPlan, closed: Any, now: datetime) -> list[Any]:
    entry = plan.entry
    columns = ["id", "kind", "account_id", "run_id", "memo", "created_at"]
    entry_row = insert(ledger_entries).from_select(
        columns,
        select(
            literal(entry["id"]),
            literal(entry["kind"]),
            closed.c.account_id,
            literal(plan.run_id),
            literal(entry["memo"]),
            literal(now, ledger_entries.c.created_at.type),
        ),
    )
    rows = [{"bucket": bucket, "amount": amount} for bucket, amount in plan.postings]
    lines = bound_rows(rows, [ledger_postings.c.bucket, ledger_postings.c.amount])
    postings = insert(ledger_postings).from_select(
        ["entry_id", "account_id", "bucket", "amount"],
        select(
            literal(entry["id"]), closed.c.account_id, lines.c.bucket, lines.c.amount
        ).select_from(closed.join(lines, true())),
    )
    available, frozen = plan.deltas
    balance = (
        update(accounts)
        .where(accounts.c.id == closed.c.account_id)
        .values(available=accounts.c.available + available, frozen=accounts.c.frozen + frozen)
    )
    return [entry_row, postings, balance] if plan.postings else [entry_row, balance]


def _jobs(plan: EndPlan, did_move: Any) -> Any:
    return (
        update(jobs)
        .where(jobs.c.run_id == plan.run_id, jobs.c.status.in_(list(plan.open_jobs)), did_move)
        .values(**plan.job_values)
    )


def _records(plan: EndPlan, moved: Any, now: datetime) -> list[Any]:
    line = plan.line
    logged = log_line(
        moved,
        now=now,
        event_type=line["event_type"],
        message=literal(line["message"]),
        level=line["level"],
        node_id=line["node_id"],
        percent=moved.c.progress_percent if line["with_percent"] else None,
    )
    published = outbox_row(moved, now=now, previous=plan.current, event_types=plan.event_types)
    return [logged, published]
