"""Realistic data for the benchmark, written with bulk SQL on either database.

Rows are cloned from rows wfrun itself wrote through its API (a finished run, its freeze, ledger
entry and postings; an account), with ids, keys, owners and times rewritten, in one
``INSERT … SELECT`` per table over ``generate_series`` (PostgreSQL) or a recursive CTE (SQLite).
Columns are read from the live schema, so columns added later (nullable or defaulted) are copied
as they are. The same cloning gives the limit's transaction its statements (``limits``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun.db.database import Database

GENERATED = {"ledger_postings": "id", "outbox_events": "id", "run_stream": "id"}
"""Tables whose id the database generates: left out of clones."""

STASHED = ("runs", "freezes", "ledger_entries", "ledger_postings", "jobs", "outbox_events")
"""What one submit writes, in its order (``run_stream`` excluded: it is filled by trigger or
by the outbox reader depending on the dialect)."""


@dataclass(frozen=True)
class Counts:
    accounts: int
    runs_many: int
    runs_big: int


async def columns(conn: AsyncConnection, table: str) -> list[str]:
    if conn.dialect.name == "sqlite":
        info = await conn.exec_driver_sql(f"PRAGMA table_info({table})")
        names = [str(row.name) for row in info]
    else:
        query = text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = :t ORDER BY ordinal_position"
        )
        names = list((await conn.execute(query, {"t": table})).scalars())
    return [name for name in names if name != GENERATED.get(table)]


def clone_sql(
    table: str, names: list[str], overrides: dict[str, str], source: str, where: str
) -> str:
    """``INSERT INTO table SELECT …`` copying ``source AS tpl`` rows, some columns rewritten."""
    exprs = ", ".join(overrides.get(name, f"tpl.{name}") for name in names)
    return f"INSERT INTO {table} ({', '.join(names)}) SELECT {exprs} FROM {source} AS tpl{where}"


def series(dialect: str, n: int) -> tuple[str, str]:
    """(prefix, FROM item) giving rows ``g.n`` = 1..n."""
    if dialect == "sqlite":
        cte = f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) "
        return cte, "g"
    return "", f"generate_series(1, {n}) AS g(n)"


def shifted(dialect: str, column: str, seconds: str) -> str:
    if dialect == "sqlite":
        return f"datetime(tpl.{column}, '-' || ({seconds}) || ' seconds')"
    return f"tpl.{column} - ({seconds}) * interval '1 second'"


async def _clone_many(
    conn: AsyncConnection, table: str, overrides: dict[str, str], where: str, n: int
) -> None:
    prefix, gen = series(conn.dialect.name, n)
    names = await columns(conn, table)
    sql = clone_sql(table, names, overrides, table, f", {gen} WHERE {where}")
    await conn.exec_driver_sql(prefix + sql)


async def seed_accounts(conn: AsyncConnection, template: str, n: int) -> None:
    overrides = {"id": "'sa_' || g.n", "display_name": "'seeded ' || g.n"}
    await _clone_many(conn, "accounts", overrides, f"tpl.id = '{template}'", n)


def _run_overrides(dialect: str, tag: str, account: str) -> dict[str, str]:
    run_id = f"'{tag}_' || g.n"
    stamp = {c: shifted(dialect, c, "g.n") for c in ("created_at", "started_at", "terminal_at")}
    return {
        "id": run_id,
        "account_id": account,
        "idempotency_key": run_id,
        "task_id": run_id,
        "prompt_id": run_id,
        "billing_run_id": run_id,
        "provider_task_id": "NULL",
        **stamp,
        "updated_at": stamp["terminal_at"],
    }


async def seed_runs(
    conn: AsyncConnection, run_id: str, tag: str, account: str, n: int, ledger: bool
) -> None:
    """``n`` copies of the finished run ``run_id`` named ``{tag}_1…``, owned by ``account`` (an
    SQL expression over ``g.n``), with their freeze and (``ledger``) ledger rows."""
    dialect = conn.dialect.name
    await _clone_many(
        conn, "runs", _run_overrides(dialect, tag, account), f"tpl.id = '{run_id}'", n
    )
    new_run = f"'{tag}_' || g.n"
    owned = {"run_id": new_run, "account_id": account}
    freeze = {"id": f"'{tag}_f' || g.n", **owned}
    await _clone_many(conn, "freezes", freeze, f"tpl.run_id = '{run_id}'", n)
    if not ledger:
        return
    entry_id = f"'{tag}_e' || tpl.kind || '_' || g.n"
    entry = {"id": entry_id, **owned}
    await _clone_many(conn, "ledger_entries", entry, f"tpl.run_id = '{run_id}'", n)
    posting = {"entry_id": f"'{tag}_e' || e.kind || '_' || g.n", "account_id": account}
    names = await columns(conn, "ledger_postings")
    prefix, gen = series(dialect, n)
    where = f", ledger_entries AS e, {gen} WHERE e.run_id = '{run_id}' AND tpl.entry_id = e.id"
    await conn.exec_driver_sql(
        prefix + clone_sql("ledger_postings", names, posting, "ledger_postings", where)
    )


async def seed(
    url: str, template_account: str, big_account: str, done_run: str, counts: Counts
) -> None:
    """Accounts ``sa_1…``, ``runs_many`` finished runs spread over them, ``runs_big`` owned by
    ``big_account``; then ANALYZE. On PostgreSQL the two halves load side by side."""

    async def many() -> None:
        async with db.transaction(write=True) as conn:
            await seed_accounts(conn, template_account, counts.accounts)
            owner = f"'sa_' || (1 + g.n % {counts.accounts})"
            await seed_runs(conn, done_run, "sm", owner, counts.runs_many, ledger=True)

    async def big() -> None:
        async with db.transaction(write=True) as conn:
            account = f"'{big_account}'"
            await seed_runs(conn, done_run, "sb", account, counts.runs_big, ledger=False)

    db = Database(url, pool_size=2)
    try:
        if db.dialect == "sqlite":
            await many()
            await big()
        else:
            await asyncio.gather(many(), big())
        async with db.transaction(write=True) as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await db.dispose()


async def stash(url: str, run_id: str) -> None:
    """Copies of one queued run's rows (``bench_tpl_<table>``): the limit's templates."""
    db = Database(url, pool_size=1)
    try:
        async with db.transaction(write=True) as conn:
            for table in STASHED:
                column = "id" if table == "runs" else "run_id"
                where = f"{column} = '{run_id}'"
                if table == "ledger_postings":
                    where = f"entry_id IN (SELECT id FROM ledger_entries WHERE run_id = '{run_id}')"
                sql = f"CREATE TABLE bench_tpl_{table} AS SELECT * FROM {table} WHERE {where}"
                await conn.exec_driver_sql(sql)
    finally:
        await db.dispose()
