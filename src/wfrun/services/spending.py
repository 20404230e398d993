"""Spending caps on the money paths (issue 16), inside the callers' transactions:

- a submit or quote above its ``max_cost`` is refused (:func:`check_max_cost`);
- a submit by a key with a spend limit reserves its quote on the key's counter for the current
  period with one conditional UPDATE, before the account is locked (:func:`reserve`); a key
  without a limit pays no statement;
- every ending is clamped to the run's ceiling (``domain.caps``) after its jobs are locked,
  with the key counter and (for a shortfall) the account row locked, in that order
  (:func:`within_caps`, CONTRIBUTING.md's lock order): this is the hard guarantee; the
  worker's stop at progress points (``services.cost_stops``) only stops consumption early.

And the operator's side: setting, removing and showing key spend limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import accounts as accounts_db
from wfrun.db import spend as spend_db
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run
from wfrun.domain import caps
from wfrun.domain.failures import Failure, FailureCode
from wfrun.domain.money import format_amount
from wfrun.domain.pricing import Settlement
from wfrun.errors import ApiKeyNotFound, InvalidParameter, MaxCostExceeded, SpendLimitExceeded
from wfrun.services.accounts import Principal, forget_cached_keys


def check_max_cost(max_cost: int | None, quote: int) -> None:
    """Raises MaxCostExceeded when the quote is above the caller's ``max_cost``."""
    if max_cost is not None and quote > max_cost:
        raise MaxCostExceeded(
            f"the quote of {format_amount(quote)} CNY is above max_cost "
            f"{format_amount(max_cost)} CNY; nothing was frozen"
        )


def run_columns(
    principal: Principal, max_cost: int | None, credit_limit: int, now: datetime
) -> dict[str, Any]:
    """A new run's cap columns: its ``max_cost``, the credit limit it is submitted under, and
    the key's spend-limit period it counts in (None when the key has no limit)."""
    window = None
    if principal.spend_limit is not None and principal.spend_period is not None:
        window = caps.period_key(caps.Period(principal.spend_period), now)
    return {"max_cost": max_cost, "credit_limit": credit_limit, "spend_window": window}


async def reserve(conn: Connection, principal: Principal, run: Run, amount: int) -> None:
    """Refuse the new ``run`` above its ``max_cost``, and count ``amount`` against its key's
    spend limit in its period (``run.spend_window``, from :func:`run_columns`); nothing, not
    even a statement, for a key without a limit. Raising rolls the submit back.

    Raises:
        MaxCostExceeded: the quote is above ``max_cost``.
        SpendLimitExceeded: frozen + spent in the period + ``amount`` would pass the limit.
    """
    check_max_cost(run.max_cost, amount)
    limit, window = principal.spend_limit, run.spend_window
    if window is None or limit is None or principal.spend_period is None:
        return
    if not await spend_db.try_reserve(conn, principal.api_key_id, window, amount, limit):
        per = _PER[caps.Period(principal.spend_period)]
        raise SpendLimitExceeded(
            f"the quote of {format_amount(amount)} CNY would take API key "
            f"{principal.api_key_id} past its spend limit of {format_amount(limit)} CNY per "
            f"{per} ({window}); nothing was frozen"
        )


_PER = {caps.Period.DAY: "UTC day", caps.Period.MONTH: "UTC month", caps.Period.TOTAL: "total"}


async def within_caps(conn: Connection, run: Run, settlement: Settlement) -> Settlement:
    """``settlement`` clamped to the run's ceiling (its ``max_cost``; its freeze + the
    account's available + the credit limit; its key's spend limit). Reads only; called by the
    ending after the run's jobs are locked, it locks the key's counter (a limited key) and
    then, for a shortfall only, the account row — the counter before the account, as a
    submit does. :func:`count_spend` records the result once the run has ended."""
    key_room: int | None = None
    if run.spend_window is not None and run.api_key_id is not None:
        key_room = await _key_room(conn, run.api_key_id, run.spend_window)
    available: int | None = None
    if _shortfall(settlement):
        available = await spend_db.lock_available(conn, run.account_id)
    cap = caps.ceiling(
        frozen=settlement.frozen,
        max_cost=run.max_cost,
        available=available,
        credit_limit=run.credit_limit,
        key_room=key_room,
    )
    return caps.clamp(settlement, cap)


def reads_for_caps(run: Run, settlement: Settlement) -> bool:
    """Whether :func:`within_caps` reads (and locks) rows for this ending — a key with a
    spend limit, or a shortfall — or :func:`count_spend` writes: when neither, the ending
    needs no statement of its own besides its one statement (``services.run_endings``)."""
    return _limited_key(run) or _shortfall(settlement)


def _limited_key(run: Run) -> bool:
    return run.spend_window is not None and run.api_key_id is not None


def _shortfall(settlement: Settlement) -> bool:
    """Only a shortfall (charged beyond the freeze) can take the account below zero."""
    return settlement.final_amount > settlement.frozen


async def count_spend(conn: Connection, run: Run, settlement: Settlement) -> None:
    """Move the ended run's freeze out of its key's counter and its charge into the spent
    (nothing, not even a statement, for a key without a limit)."""
    if run.spend_window is not None and run.api_key_id is not None:
        await spend_db.move_spend(
            conn, run.api_key_id, run.spend_window, run.quote_amount, settlement.final_amount
        )


async def count_refund(conn: Connection, run: Run, amount: int) -> None:
    """A refund of ``amount`` gives it back to the spent of the run's key in the run's period:
    a key's spend is what it was charged net of refunds (nothing, not even a statement, for a
    key without a limit). Locks the counter: after the run, before the account."""
    if run.spend_window is not None and run.api_key_id is not None:
        await spend_db.move_spend(conn, run.api_key_id, run.spend_window, 0, -amount)


async def _key_room(conn: Connection, key_id: str, window: str) -> int | None:
    """What the key may still spend in ``window`` besides this run's own freeze, which its
    counter's frozen already holds (None: the limit was removed since the run was
    submitted). Locks the counter."""
    counter = await spend_db.lock_spend(conn, key_id, window)
    limit = await spend_db.get_limit(conn, key_id)
    if counter is None or limit is None:
        return None
    return limit.spend_limit - counter.spent - counter.frozen


def clamp_record(settled: Settlement, failure: Failure | None) -> tuple[Failure, dict[str, Any]]:
    """How an ending clamped to its ceiling is recorded: its failure (the ending's own, else
    ``COST_LIMIT_REACHED``) and the overrun the operator absorbed."""
    if failure is None:
        consumed = settled.final_amount + settled.absorbed_over_limit
        failure = Failure(
            FailureCode.COST_LIMIT_REACHED,
            f"consumed {format_amount(consumed)} CNY; charged its ceiling of "
            f"{format_amount(settled.final_amount)} CNY (max_cost, credit limit or key spend "
            f"limit); the operator absorbed {format_amount(settled.absorbed_over_limit)} CNY",
        )
    return failure, {"absorbed_over_limit": settled.absorbed_over_limit}


# ---- the operator's side -----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyLimitView:
    """A key's spend limit and what it has used in the current period."""

    key_id: str
    spend_limit: int | None
    period: str | None
    period_key: str | None
    frozen: int
    spent: int


async def set_key_limit(db: Database, key_id: str, limit: int | None, period: str) -> None:
    """Set (``limit`` ≥ 0) or remove (None) a key's spend limit per ``period`` (this
    process's key cache forgets its keys: the new limit holds at once here)."""
    if limit is not None and limit < 0:
        raise InvalidParameter(f"--spend-limit must not be negative, got {format_amount(limit)}")
    async with db.transaction(write=True) as conn:
        if await accounts_db.get_api_key(conn, key_id) is None:
            raise ApiKeyNotFound(f"API key {key_id} does not exist")
        if limit is None:
            await spend_db.remove_limit(conn, key_id)
        else:
            await spend_db.set_limit(conn, key_id, limit, caps.Period(period).value, utcnow())
    forget_cached_keys()


async def key_limits(db: Database, key_ids: list[str]) -> dict[str, KeyLimitView]:
    """Each listed key's limit and its use in the current period (keys without a limit too)."""
    now = utcnow()
    async with db.transaction() as conn:
        limits = {row.key_id: row for row in await spend_db.limits(conn, key_ids)}
        windows = [caps.period_key(caps.Period(row.period), now) for row in limits.values()]
        used = {
            (row.key_id, row.period_key): row
            for row in await spend_db.spend_in(conn, list(limits), windows)
        }
    views: dict[str, KeyLimitView] = {}
    for key_id in key_ids:
        row = limits.get(key_id)
        if row is None:
            views[key_id] = KeyLimitView(key_id, None, None, None, 0, 0)
            continue
        window = caps.period_key(caps.Period(row.period), now)
        counter = used.get((key_id, window))
        frozen, spent = (counter.frozen, counter.spent) if counter else (0, 0)
        views[key_id] = KeyLimitView(key_id, row.spend_limit, row.period, window, frozen, spent)
    return views
