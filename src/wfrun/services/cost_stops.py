"""Stopping a running run at its cost ceiling (issue 16), the early half of the spending caps:
at each progress point the worker compares what the run has accrued (its prices × the time
since it started, ``domain.caps``) with its ceiling, and on reaching it interrupts the engine
as a cancel does; the run then ends ``cancelled`` with ``COST_LIMIT_REACHED``, charged exactly
its ceiling (the settlement clamps: ``services.spending``).

Only ``max_cost`` is compared while the run is within its freeze (no statement); past its
freeze the account's available balance and the key's spend limit are read too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wfrun.clock import utcnow
from wfrun.db import spend as spend_db
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run
from wfrun.domain import caps
from wfrun.domain.failures import Failure, FailureCode
from wfrun.domain.money import format_amount
from wfrun.domain.pricing import compute_cost, settle
from wfrun.domain.runs import RunStatus
from wfrun.services.claims import CancelRequested, Claim
from wfrun.services.run_endings import Ending, end_run


class CostLimitReached(CancelRequested):
    """The run's accrued cost reached its ceiling: stop it as a cancel would."""

    def __init__(self, accrued: int, cap: caps.Ceiling) -> None:
        super().__init__(f"accrued {accrued} reached the {cap.why} ceiling {cap.amount}")
        self.accrued = accrued
        self.cap = cap


async def check(conn: Connection, claim: Claim, now: datetime) -> CostLimitReached | None:
    """At a progress point: the stop, when the run's accrued cost has reached its ceiling."""
    run = claim.run
    started = run.started_at or now
    elapsed_ms = int((now - started).total_seconds() * 1000)
    accrued = caps.accrued_cost(claim.spec.prices, elapsed_ms)
    cap = caps.ceiling(frozen=run.quote_amount, max_cost=run.max_cost)
    if not caps.reached(accrued, cap) and accrued > run.quote_amount:  # past its freeze
        cap = caps.ceiling(
            frozen=run.quote_amount,
            max_cost=run.max_cost,
            available=await spend_db.read_available(conn, run.account_id),
            credit_limit=run.credit_limit,
            key_room=await _key_room(conn, run),
        )
    return (
        CostLimitReached(accrued, cap) if cap is not None and caps.reached(accrued, cap) else None
    )


async def _key_room(conn: Connection, run: Run) -> int | None:
    if run.spend_window is None or run.api_key_id is None:
        return None
    limit = await spend_db.get_limit(conn, run.api_key_id)
    counters = await spend_db.spend_in(conn, [run.api_key_id], [run.spend_window])
    if limit is None or not counters:
        return None
    return limit.spend_limit - counters[0].spent - counters[0].frozen  # own freeze included


def found(exc: Exception, seen: Exception | None) -> CostLimitReached | None:
    """The cost stop behind an interrupted run: raised directly, or found by a background
    progress write (``workers.progress``); None for a user's cancel."""
    for candidate in (exc, seen):
        if isinstance(candidate, CostLimitReached):
            return candidate
    return None


async def end_at_cap(
    db: Database,
    claim: Claim,
    stop: CostLimitReached,
    *,
    execution_ms: int,
    kept: Mapping[str, Any] | None = None,
) -> bool:
    """End the stopped run ``cancelled`` with ``COST_LIMIT_REACHED``, charged what it consumed
    (at least what it had accrued at the stop), which settlement clamps to its ceiling;
    ``kept``: the run columns of the outputs produced before the stop
    (``run_outcomes.kept_outputs``)."""
    run = claim.run
    if run.status is not RunStatus.RUNNING:
        return False
    consumed = max(compute_cost(claim.spec.prices, execution_ms), stop.accrued)
    settlement = settle(
        frozen=run.quote_amount,
        compute=consumed,
        external=0,
        quoted_external=0,
        accept_external_cost_risk=False,
    )
    detail = (
        f"the run reached its {stop.cap.why} of {format_amount(stop.cap.amount)} CNY after "
        f"{execution_ms} ms and was stopped; it is charged that ceiling, not more"
    )
    failure = Failure(FailureCode.COST_LIMIT_REACHED, detail)
    ending = Ending(
        RunStatus.CANCELLED,
        settlement,
        "stopped at its cost limit",
        failure,
        execution_ms,
        dict(kept or {}),
    )
    async with db.transaction(write=True) as conn:
        ended = await end_run(conn, run, ending, now=utcnow(), attempt=claim.attempt)
    return ended is not None
