"""A run's ending in one statement (PostgreSQL): the run's jobs locked, the run's conditional
move to its terminal status, its freeze closed, the ledger entry and its postings, the
account's balance, its open jobs closed, the log line and the outbox row — data-modifying
CTEs, each step only when the one before it matched, in the lock order job → run → freeze →
account. ``services.run_endings`` decides every value; SQLite, without data-modifying CTEs,
takes the same steps one statement each. The caller owns the transaction, or has none: the
statement is atomic by itself (``Database.one_statement``), and one whose run moved without
the open freeze it planned for fails whole (:data:`_BROKEN`).

The statement is built once per shape (which run columns and job columns it sets, how many
postings, whether it checks an attempt, the log line's percentage, the outbox event names) with
every value a bound parameter: building one (its CTEs' column proxies) and computing its cache
key cost more of a worker's CPU than running it (issue 17's profile: 30 % of a draining
worker).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError

from wfrun.db.database import Connection
from wfrun.db.rows import record
from wfrun.db.run_ctes import log_line, outbox_row, param_rows
from wfrun.db.runs import Run
from wfrun.db.schema import (
    UTCDateTime,
    accounts,
    freezes,
    jobs,
    ledger_entries,
    ledger_postings,
    run_events,
    runs,
)


@dataclass(frozen=True, slots=True)
class EndPlan:
    """Every value of an ending, decided by the caller."""

    run_id: str
    current: str
    attempt: int | None
    values: Mapping[str, Any]
    frozen: int
    """The amount the run's open freeze must hold (else the statement changes nothing)."""
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


_Shape = tuple[
    bool, tuple[str, ...], int, tuple[str, ...], tuple[str, ...], bool, tuple[tuple[str, str], ...]
]
"""What the statement's text depends on (module doc)."""
_STATEMENTS: dict[_Shape, Any] = {}
_BROKEN = "22012"
"""division_by_zero: how the statement refuses an ending whose run moved but whose freeze is
not the open one of the planned amount (see :func:`_statement`): the error aborts the whole
statement, so nothing of it is written, in a transaction or without one."""
_KEPT = 64


@dataclass(frozen=True, slots=True)
class Ended:
    """The run as ended, and the account of the freeze the statement closed (there is one:
    else the statement refuses, :data:`_BROKEN`)."""

    run: Run
    freeze_account_id: str


def supported(conn: Connection) -> bool:
    """Whether :func:`end_in_one` works on this connection's database."""
    return conn.dialect.name == "postgresql"


async def end_in_one(conn: Connection, plan: EndPlan, *, now: datetime) -> Ended | None:
    """Carry out ``plan`` (module doc); None when the run was no longer at ``plan.current``
    (or under ``plan.attempt``) and nothing changed."""
    key = _shape(plan)
    query = _STATEMENTS.get(key)
    if query is None:
        if len(_STATEMENTS) >= _KEPT:
            _STATEMENTS.clear()
        query = _STATEMENTS[key] = _statement(key)
    try:
        row = (await conn.execute(query, _params(plan, now))).mappings().first()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != _BROKEN:
            raise
        raise AssertionError(
            f"run {plan.run_id} would have ended, but no open freeze of {plan.frozen} was found; "
            "the statement wrote nothing"
        ) from exc
    if row is None:
        return None
    run = record(Run, {c.name: row[c.name] for c in runs.c})
    return Ended(run, row["freeze_account_id"])


def _shape(plan: EndPlan) -> _Shape:
    return (
        plan.attempt is not None,
        tuple(sorted(plan.values)),
        len(plan.postings),
        tuple(plan.open_jobs),
        tuple(sorted(plan.job_values)),
        bool(plan.line["with_percent"]),
        tuple(plan.event_types.items()),
    )


def _params(plan: EndPlan, now: datetime) -> dict[str, Any]:
    """The statement's bound values (names as :func:`_statement` binds them)."""
    line, entry = plan.line, plan.entry
    params: dict[str, Any] = {
        "end_run_id": plan.run_id,
        "end_current": plan.current,
        "end_attempt": plan.attempt,
        "end_frozen": plan.frozen,
        "end_now": now,
        "end_freeze_status": plan.freeze_status,
        "entry_id": entry["id"],
        "entry_kind": entry["kind"],
        "entry_memo": entry["memo"],
        "delta_available": plan.deltas[0],
        "delta_frozen": plan.deltas[1],
        "line_event_type": line["event_type"],
        "line_message": line["message"],
        "line_level": line["level"],
        "line_node_id": line["node_id"],
    }
    for i, (bucket, amount) in enumerate(plan.postings):
        params |= {f"posting{i}_bucket": bucket, f"posting{i}_amount": amount}
    params |= {f"run_{name}": value for name, value in plan.values.items()}
    return params | {f"job_{name}": value for name, value in plan.job_values.items()}


def _statement(key: _Shape) -> Any:
    has_attempt, run_columns, _, _, _, _, _ = key
    now = bindparam("end_now", type_=UTCDateTime())
    run_id = bindparam("end_run_id", type_=runs.c.id.type)
    moved_update = update(runs).where(
        runs.c.id == run_id,
        runs.c.status == bindparam("end_current", type_=runs.c.status.type),
        _jobs_locked(run_id),
    )
    if has_attempt:
        moved_update = moved_update.where(runs.c.attempt == bindparam("end_attempt", Integer()))
    values = {name: bindparam(f"run_{name}", type_=runs.c[name].type) for name in run_columns}
    moved = moved_update.values(**values).returning(*runs.c).cte("moved")
    did_move = exists(select(moved.c.id))
    closed = (
        update(freezes)
        .where(freezes.c.run_id == run_id, freezes.c.status == "frozen", did_move)
        .values(status=bindparam("end_freeze_status", type_=freezes.c.status.type), resolved_at=now)
        .returning(freezes.c.id, freezes.c.account_id, freezes.c.amount)
        .cte("closed")
    )
    steps = [*_money(key, closed, now), _jobs(key, did_move), *_records(key, moved, now)]
    intact = and_(
        closed.c.id.is_not(None),
        closed.c.amount == bindparam("end_frozen", type_=freezes.c.amount.type),
    )
    return (
        select(
            moved,
            closed.c.account_id.label("freeze_account_id"),
            (literal(1, Integer()) / case((intact, 1), else_=0)).label("intact"),
        )
        .select_from(moved.outerjoin(closed, true()))
        .add_cte(*[step.cte(f"step{i}") for i, step in enumerate(steps)])
    )


def _jobs_locked(run_id: Any) -> Any:
    """A condition of the run's move that first locks the run's jobs (``FOR UPDATE``, in id
    order, as ``broker.lock_for_run``): a scalar subquery that does not depend on the row is
    a one-time filter PostgreSQL evaluates before its scan reaches (and locks) the run, so
    the statement keeps the lock order job → run → freeze → account by itself."""
    locked = (
        select(jobs.c.id)
        .where(jobs.c.run_id == run_id)
        .order_by(jobs.c.id)
        .with_for_update()
        .cte("locked_jobs")
    )
    return select(func.count()).select_from(locked).scalar_subquery() >= 0


def _money(key: _Shape, closed: Any, now: Any) -> list[Any]:
    postings_count = key[2]
    entry_id = bindparam("entry_id", type_=ledger_entries.c.id.type)
    entry_row = insert(ledger_entries).from_select(
        ["id", "kind", "account_id", "run_id", "memo", "created_at"],
        select(
            entry_id,
            bindparam("entry_kind", type_=ledger_entries.c.kind.type),
            closed.c.account_id,
            bindparam("end_run_id", type_=runs.c.id.type),
            bindparam("entry_memo", type_=ledger_entries.c.memo.type),
            now,
        ),
    )
    lines = param_rows(postings_count, [ledger_postings.c.bucket, ledger_postings.c.amount])
    postings = insert(ledger_postings).from_select(
        ["entry_id", "account_id", "bucket", "amount"],
        select(entry_id, closed.c.account_id, lines.c.bucket, lines.c.amount).select_from(
            closed.join(lines, true())
        ),
    )
    balance = (
        update(accounts)
        .where(accounts.c.id == closed.c.account_id)
        .values(
            available=accounts.c.available
            + bindparam("delta_available", type_=accounts.c.available.type),
            frozen=accounts.c.frozen + bindparam("delta_frozen", type_=accounts.c.frozen.type),
        )
    )
    return [entry_row, postings, balance] if postings_count else [entry_row, balance]


def _jobs(key: _Shape, did_move: Any) -> Any:
    open_jobs, job_columns = key[3], key[4]
    values = {name: bindparam(f"job_{name}", type_=jobs.c[name].type) for name in job_columns}
    return (
        update(jobs)
        .where(
            jobs.c.run_id == bindparam("end_run_id", type_=runs.c.id.type),
            jobs.c.status.in_(list(open_jobs)),
            did_move,
        )
        .values(**values)
    )


def _records(key: _Shape, moved: Any, now: Any) -> list[Any]:
    with_percent, event_types = key[5], dict(key[6])
    logged = log_line(
        moved,
        now=now,
        event_type=bindparam("line_event_type", type_=run_events.c.event_type.type),
        message=bindparam("line_message", type_=run_events.c.message.type),
        level=bindparam("line_level", type_=run_events.c.level.type),
        node_id=bindparam("line_node_id", type_=run_events.c.node_id.type),
        percent=moved.c.progress_percent if with_percent else None,
    )
    previous = bindparam("end_current", type_=runs.c.status.type)
    published = outbox_row(moved, now=now, previous=previous, event_types=event_types)
    return [logged, published]
