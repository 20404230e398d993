"""Counting an account's jobs against its run quotas: waiting (``todo``) jobs for the
queued-run cap at submit, running (``doing``/``tracking``) ones for the running-run cap the
claim obeys. The cap of an account is its override (``account_limits``) or the server's
default. ``ix_jobs_account_status`` serves both counts. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Integer, String, case, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

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
    :func:`past_running_caps` (SQLite's single writer keeps this exact)."""
    capped = accounts_at_running_cap(default_cap)
    return or_(jobs.c.status != WAITING, jobs.c.account_id.not_in(capped))


def within_batch(candidates: Any, default_cap: int | None) -> Any:
    """The ids of a batch claim's ``candidates`` (``id``, ``account_id``, ``status`` and the
    queue order's columns) the batch may take: each account's waiting jobs in queue order
    while its runs in service plus those taken before them in the batch stay within its cap.
    Accounts already at their cap are not candidates (:func:`within_running_cap`); a lapsed
    job being re-claimed is taken (it counts as running already)."""
    c = candidates.c
    waiting = c.status == WAITING
    order = (c.fair_round, c.created_at, c.id)
    nth = func.sum(case((waiting, 1), else_=0)).over(partition_by=c.account_id, order_by=order)
    running = jobs.alias("batch_running")
    in_service = (
        select(func.count())
        .where(running.c.account_id == c.account_id, running.c.status.in_(RUNNING))
        .scalar_subquery()
    )
    ranked = (
        select(c.id, c.status, (nth + in_service).label("places"), _cap(default_cap).label("cap"))
        .select_from(
            candidates.outerjoin(account_limits, account_limits.c.account_id == c.account_id)
        )
        .subquery("ranked")
    )
    room = or_(ranked.c.status != WAITING, ranked.c.cap.is_(None), ranked.c.places <= ranked.c.cap)
    return select(ranked.c.id).where(room)


async def waiting_count(conn: Connection, account_id: str) -> int:
    """The account's jobs waiting in the queue."""
    query = select(func.count()).where(jobs.c.account_id == account_id, jobs.c.status == WAITING)
    return int((await conn.execute(query)).scalar_one())


async def running_count(conn: Connection, account_id: str) -> int:
    """The account's runs in service (running, or tracked at a provider)."""
    query = select(func.count()).where(jobs.c.account_id == account_id, jobs.c.status.in_(RUNNING))
    return int((await conn.execute(query)).scalar_one())


async def past_running_caps(conn: Connection, caps: Mapping[str, int]) -> set[str]:
    """PostgreSQL, after a claim: the accounts of ``caps`` (account → its cap) running more
    than their cap, the claimed runs among them. Claims of one account wait for each other
    here (a transaction-scoped advisory lock per account, taken in the order of the lock keys
    so two batches cannot wait on each other, even when two accounts' keys collide), so the count sees every claim that went before,
    committed: two claims at once cannot both take the last place (each claim's own snapshot
    could not see the other). Two statements however many accounts: the locks, then the
    count, whose snapshot is taken once the locks are held."""
    if not caps:
        return set()
    accounts = select(func.unnest(literal(sorted(caps), ARRAY(String))).label("account_id"))
    key = func.hashtext(accounts.subquery("accounts").c.account_id)
    keys = select(key.label("key")).distinct().order_by(key).subquery("keys")  # lock order
    await conn.execute(select(func.pg_advisory_xact_lock(_RUNNING_LOCKS, keys.c.key)))
    query = (
        select(jobs.c.account_id, func.count())
        .where(jobs.c.account_id.in_(list(caps)), jobs.c.status.in_(RUNNING))
        .group_by(jobs.c.account_id)
    )
    counts = (await conn.execute(query)).all()
    return {account_id for account_id, n in counts if n > caps[account_id]}
