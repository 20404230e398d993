"""A claimed run's outcome, recorded by the worker that executed it: succeeded (settled by
what it consumed, 多退少补), stopped on request (charged the time it used) or failed
(released). Each is one short transaction around :func:`~wfrun.services.run_endings.end_run`,
fenced by the claim's attempt: False when this attempt no longer owns the run. On
PostgreSQL an ending with no spend cap to read is one statement without a transaction
(``run_endings.in_one_statement``): one round trip from the engine's result to the run
visible as ended (issue 11's "done" latency)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from wfrun.clock import utcnow
from wfrun.db.database import Database
from wfrun.domain.failures import Failure, cancelled
from wfrun.domain.pricing import compute_cost, release, settle
from wfrun.domain.runs import RunStatus
from wfrun.services.claims import Claim
from wfrun.services.run_endings import Ending, end_run, in_one_statement


async def complete(
    db: Database,
    claim: Claim,
    *,
    outputs: dict[str, Any],
    execution_ms: int,
    retention: timedelta = timedelta(days=7),
    external: int = 0,
    usage: dict[str, Any] | None = None,
    compute: int | None = None,
) -> bool:
    """Mark the run succeeded and settle by actual usage: compute time (or the given
    ``compute`` amount) plus the provider's ``external`` cost (from its reported ``usage``)."""
    run = claim.run
    settlement = settle(
        frozen=run.quote_amount,
        compute=compute_cost(claim.spec.prices, execution_ms) if compute is None else compute,
        external=external,
        quoted_external=run.quote_external,
        accept_external_cost_risk=run.accept_external_cost_risk,
    )
    values = kept_outputs(claim, outputs, retention) | {"progress_percent": 100}
    if usage is not None:
        values["usage"] = usage
    ending = Ending(RunStatus.SUCCEEDED, settlement, "succeeded", None, execution_ms, values)
    return await _end(db, claim, ending)


def kept_outputs(claim: Claim, outputs: dict[str, Any], retention: timedelta) -> dict[str, Any]:
    """The run columns of stored ``outputs``, kept for the package's retention or the
    server's."""
    hours = claim.spec.output_retention_hours
    keep = timedelta(hours=hours) if hours is not None else retention
    return {"outputs": outputs, "outputs_expire_at": utcnow() + keep}


async def cancel_consumed(
    db: Database, claim: Claim, *, execution_ms: int, detail: str | None = None
) -> bool:
    """Stop a running run on request, charging only the seconds it consumed (no fixed fee)."""
    consumed = compute_cost(claim.spec.prices, execution_ms, include_fixed_fee=False)
    settlement = settle(
        frozen=claim.run.quote_amount,
        compute=consumed,
        external=0,
        quoted_external=0,
        accept_external_cost_risk=False,
    )
    why = detail or f"cancelled while running after {execution_ms} ms; charged the time used"
    ending = Ending(
        RunStatus.CANCELLED, settlement, "cancelled while running", cancelled(why), execution_ms
    )
    return await _end(db, claim, ending)


async def fail(db: Database, claim: Claim, failure: Failure, *, execution_ms: int | None) -> bool:
    """Fail the run and release its whole freeze."""
    ending = Ending(
        RunStatus.FAILED,
        release(claim.run.quote_amount),
        f"{failure.code.name}: {failure.detail}",
        failure,
        execution_ms,
    )
    return await _end(db, claim, ending)


async def _end(db: Database, claim: Claim, ending: Ending) -> bool:
    if claim.run.status is not RunStatus.RUNNING:  # claimed before it ended elsewhere
        return False
    one = in_one_statement(claim.run, ending)  # on SQLite ``one_statement`` is a transaction
    async with db.one_statement() if one else db.transaction(write=True) as conn:
        ended = await end_run(conn, claim.run, ending, now=utcnow(), attempt=claim.attempt)
    return ended is not None
