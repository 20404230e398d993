"""A submit's writes, in as few statements as each database allows (issue 17).

The rows a new run brings — the run (claiming its idempotency key), its freeze, the freeze's
ledger entry and postings, its dispatch job, its first outbox change — and the freeze of the
account's balance are written by :func:`insert_submission`, last thing before COMMIT:

- PostgreSQL: **one statement**, a chain of data-modifying CTEs. Every child row is inserted
  ``FROM`` the run's ``INSERT … ON CONFLICT DO NOTHING RETURNING``, so a taken key writes
  nothing, and the conditional ``UPDATE accounts`` (``available >= amount``) runs on the run's
  row too and comes last in the chain: the hot account row is locked by the transaction's last
  statement and released by the COMMIT that follows (measured 1.84× at 8 clients against
  locking it mid-transaction).
- SQLite (in-process, under the write lock): the same writes as separate statements, in the
  same order, the account UPDATE last.

The caller learns whether the key was taken (no run) and whether the balance covered the
amount; when it did not, the caller raises and the transaction rolls back (rows inserted
before the UPDATE included) — nothing of the attempt remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, exists, func, insert, literal, select, union_all, update
from sqlalchemy.dialects import postgresql

from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict
from wfrun.db.rows import record
from wfrun.db.runs import IDEMPOTENCY as _IDEMPOTENCY
from wfrun.db.runs import Run
from wfrun.db.schema import accounts, freezes, jobs, ledger_entries, ledger_postings, outbox_events
from wfrun.db.schema import runs as runs_table


@dataclass(frozen=True, slots=True)
class NewRun:
    """The rows of one submit, as :func:`insert_submission` writes them."""

    run: dict[str, Any]
    freeze: dict[str, Any]
    entry: dict[str, Any]
    postings: list[dict[str, Any]]
    job: dict[str, Any]
    change: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Inserted:
    run: Run | None
    """The stored run; None when its idempotency key was taken (nothing was written)."""
    frozen: bool
    """The account's available balance covered the freeze (False: the caller must roll back)."""


async def insert_submission(conn: Connection, new: NewRun) -> Inserted:
    """Write ``new`` (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        return await _in_one_statement(conn, new)
    return await _statement_by_statement(conn, new)


def _freeze_update(account_id: str, amount: int) -> Any:
    return (
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.available >= amount)
        .values(available=accounts.c.available - amount, frozen=accounts.c.frozen + amount)
    )


async def _statement_by_statement(conn: Connection, new: NewRun) -> Inserted:
    statement = insert_ignoring_conflict(conn, runs_table, _IDEMPOTENCY).returning(*runs_table.c)
    row = (await conn.execute(statement, new.run)).mappings().first()
    if row is None:
        return Inserted(None, frozen=False)
    await conn.execute(insert(freezes), new.freeze)
    await conn.execute(insert(ledger_entries), new.entry)
    if new.postings:
        await conn.execute(insert(ledger_postings), new.postings)
    await conn.execute(insert(jobs), new.job)
    await conn.execute(insert(outbox_events), new.change)
    amount = new.freeze["amount"]
    frozen = await conn.execute(_freeze_update(new.freeze["account_id"], amount))
    return Inserted(record(Run, row), frozen=frozen.rowcount == 1)


def _child(table: Table, name: str, rows: list[dict[str, Any]], parent: Any) -> Any:
    """``INSERT INTO table SELECT <row> FROM parent`` for each row, as a CTE."""
    columns = list(rows[0])
    selects = [
        select(*[literal(row[c], type_=table.c[c].type) for c in columns]).select_from(parent)
        for row in rows
    ]
    source = selects[0] if len(selects) == 1 else union_all(*selects)
    return insert(table).from_select(columns, source).cte(name)


async def _in_one_statement(conn: Connection, new: NewRun) -> Inserted:
    run = (
        postgresql.insert(runs_table)
        .values(new.run)
        .on_conflict_do_nothing(index_elements=_IDEMPOTENCY)
        .returning(*runs_table.c)
        .cte("new_run")
    )
    children = [
        _child(freezes, "new_freeze", [new.freeze], run),
        _child(ledger_entries, "new_entry", [new.entry], run),
        _child(jobs, "new_job", [new.job], run),
        _child(outbox_events, "new_change", [new.change], run),
    ]
    if new.postings:
        children.append(_child(ledger_postings, "new_postings", new.postings, run))
    amount = new.freeze["amount"]
    freeze = (
        _freeze_update(new.freeze["account_id"], amount)
        .where(exists(select(run.c.id)))
        .returning(accounts.c.id)
        .cte("frozen_account")
    )
    frozen = select(func.count()).select_from(freeze).scalar_subquery().label("wfrun_frozen")
    query = select(run, frozen).add_cte(*children, freeze)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return Inserted(None, frozen=False)
    return Inserted(record(Run, row), frozen=row["wfrun_frozen"] == 1)
