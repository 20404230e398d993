"""Counting an account's jobs against its run quotas: waiting (``todo``) jobs for the
queued-run cap at submit, running (``doing``/``tracking``) ones for the running-run cap the
claim obeys. The cap of an account is its override (``account_limits``) or the server's
default. ``ix_jobs_account_status`` serves both counts. Callers own the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, func, literal, or_, select

from wfrun.db.database import Connection
from wfrun.db.limits import account_limits
from wfrun.db.schema import jobs

RUNNING = ("doing", "tracking")
"""``broker.JobStatus`` DOING and TRACKING (spelled out: the broker's claim imports this)."""
WAITING = "todo"
_RUNNING_LOCKS = 0x77667263  # "wfrc": the two-key advisory locks of accounts' running places


def _cap(default_cap: int | None) -> Any:
    return func.coalesce(account_limits.c.max_running_runs, literal(default_cap, Integer))


def accounts_at_running_cap(default_cap: int | None) -> Any:
    """The accounts running as many runs as their cap allows (a subquery for ``NOT IN``):
    evaluated once per claim, over the jobs in service only."""
    running = jobs.alias("running_jobs")
    return (
        select(running.c.account_id)
        .select_from(
            running.outerjoin(account_limits, account_limits.c.account_id == running.c.account_id)
        )
        .where(running.c.status.in_(RUNNING))
        .group_by(running.c.account_id, account_limits.c.max_running_runs)
        .having(func.count() >= _cap(default_cap))
    )


def within_running_cap(default_cap: int | None) -> Any:
    """The claim's condition: a waiting job whose account is at its running-run cap waits
    where it is (a lapsed job being re-claimed already counts as running). Claims racing on
    PostgreSQL may each see the last free place, so there a claim also checks
    :func:`holds_running_place` (SQLite's single writer keeps this exact)."""
    capped = accounts_at_running_cap(default_cap)
    return or_(jobs.c.status != WAITING, jobs.c.account_id.not_in(capped))


async def waiting_count(conn: Connection, account_id: str) -> int:
    """The account's jobs waiting in the queue."""
    query = select(func.count()).where(jobs.c.account_id == account_id, jobs.c.status == WAITING)
    return int((await conn.execute(query)).scalar_one())


async def running_count(conn: Connection, account_id: str) -> int:
    """The account's runs in service (running, or tracked at a provider)."""
    query = select(func.count()).where(jobs.c.account_id == account_id, jobs.c.status.in_(RUNNING))
    return int((await conn.execute(query)).scalar_one())


async def holds_running_place(conn: Connection, account_id: str, cap: int) -> bool:
    """PostgreSQL, after a claim: whether the account runs at most ``cap`` runs, the claimed
    one among them. Claims of one account wait for each other here (a transaction-scoped
    advisory lock), so the count sees every claim that went before, committed: two claims at
    once cannot both take the last place (each claim's own snapshot could not see the
    other)."""
    lock = func.pg_advisory_xact_lock(_RUNNING_LOCKS, func.hashtext(account_id))
    await conn.execute(select(lock))
    return await running_count(conn, account_id) <= cap
