"""The operator's log lines about runs, engine instances and webhook deliveries.

These are lines of the process log (see :mod:`wfrun.logs`), not a run's log events (the
``run_events`` table its customer reads). A run's lines carry ``run_order_id`` and
``account_id``; amounts are the wire's 8-decimal strings. A line about what a transaction
wrote is emitted once it commits (:func:`wfrun.db.database.after_commit`): a change that rolled
back never shows.

Loggers: ``wfrun.runs`` (status changes, settlements, retries, give-ups), ``wfrun.instances``
(health changes) and ``wfrun.webhooks`` (failed deliveries).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from wfrun.db.database import Connection, after_commit
from wfrun.db.runs import Run
from wfrun.db.webhook_deliveries import Delivery
from wfrun.domain.failures import Failure
from wfrun.domain.money import format_amount
from wfrun.domain.pricing import Settlement
from wfrun.domain.runs import FreezeStatus, RunStatus

runs_log = logging.getLogger("wfrun.runs")
instances_log = logging.getLogger("wfrun.instances")
webhooks_log = logging.getLogger("wfrun.webhooks")


def run_fields(run: Run) -> dict[str, Any]:
    """What identifies a run on a log line."""
    return {
        "run_order_id": run.id,
        "account_id": run.account_id,
        "workflow_id": run.workflow_id,
        "family": run.family,
    }


def _later(conn: Connection, logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    after_commit(conn, functools.partial(logger.log, level, event, extra=fields))


def status_changed(conn: Connection, run: Run, *, previous: RunStatus | None) -> None:
    """``run`` (as just written) moved from ``previous`` to its status."""
    fields = run_fields(run) | {
        "status": run.status.value,
        "previous_status": None if previous is None else previous.value,
        "attempt": run.attempt,
    }
    if run.error_code is not None:
        fields["error_code"] = run.error_code
    level = logging.WARNING if run.status is RunStatus.FAILED else logging.INFO
    _later(conn, runs_log, level, "run status changed", **fields)


def settled(
    conn: Connection, run_id: str, account_id: str, status: FreezeStatus, settlement: Settlement
) -> None:
    """A run's freeze resolved (``settled`` or ``released``): what was frozen, what the run
    costs (the account's charge), what went back to the account and what the charge took
    beyond the freeze."""
    _later(
        conn,
        runs_log,
        logging.INFO,
        "run settled",
        run_order_id=run_id,
        account_id=account_id,
        freeze_status=status.value,
        frozen=format_amount(settlement.frozen),
        final_amount=format_amount(settlement.final_amount),
        released_amount=format_amount(settlement.released_amount),
        shortfall_amount=format_amount(settlement.shortfall_amount),
        compute_cost=format_amount(settlement.compute_cost),
        external_model_cost=format_amount(settlement.external_model_cost),
    )


def gave_up(conn: Connection, run: Run, *, attempts: int, failure: Failure) -> None:
    """``run``'s job was claimed more than its ``attempts`` allow: it fails."""
    _later(
        conn,
        runs_log,
        logging.WARNING,
        "run gave up",
        **run_fields(run),
        attempts=attempts,
        error_code=failure.code.name,
        detail=failure.detail,
    )


def retry_scheduled(run: Run, *, attempt: int, delay_seconds: float, error: str) -> None:
    """(After the commit) attempt ``attempt`` failed transiently; another follows."""
    runs_log.warning(
        "run retry scheduled",
        extra=run_fields(run)
        | {"attempt": attempt, "delay_seconds": delay_seconds, "error": error},
    )


def deferred(run: Run, *, attempt: int, delay_seconds: float, why: str) -> None:
    """(After the commit) the run waits without using an attempt (engine busy, instance
    unreachable)."""
    runs_log.warning(
        "run deferred",
        extra=run_fields(run) | {"attempt": attempt, "delay_seconds": delay_seconds, "why": why},
    )


def instance_health(
    instance_id: str, url: str | None, *, healthy: bool, error: str | None, why: str
) -> None:
    """(After the commit) an engine instance turned unhealthy, or healthy again."""
    fields = {"instance_id": instance_id, "url": url, "healthy": healthy, "why": why}
    if healthy:
        instances_log.info("instance healthy again", extra=fields)
    else:
        instances_log.warning("instance unhealthy", extra=fields | {"error": error})


def webhook_failed(
    delivery: Delivery, *, status_code: int | None, error: str | None, outcome: dict[str, Any]
) -> None:
    """(After the commit) one delivery attempt failed; ``outcome`` is what was recorded."""
    fields: dict[str, Any] = {
        "delivery_id": delivery.id,
        "run_order_id": delivery.run_id,
        "account_id": delivery.account_id,
        "event_type": delivery.event_type,
        "target": delivery.target,
        "attempt": delivery.attempts,
        "status_code": status_code,
        "error": error,
        "gave_up": outcome.get("status") == "failed",
    }
    due = outcome.get("next_attempt_at")
    if due is not None:
        fields["next_attempt_at"] = due.isoformat()
    webhooks_log.warning("webhook delivery failed", extra=fields)
