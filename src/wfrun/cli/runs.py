"""``wfrun runs``: customers' runs as the operator sees them: list, inspect, cancel, refund."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from wfrun.cli.common import amount_of, json_option, run_db
from wfrun.cli.output import emit, plain
from wfrun.db.database import Database
from wfrun.db.runs import Run
from wfrun.domain.money import format_amount
from wfrun.domain.runs import RunStatus
from wfrun.services import operator

if TYPE_CHECKING:
    from wfrun.services.runs import CancelResult

LISTED = ("id", "account_id", "workflow_id", "family", "status", "quote_amount", "final_amount")
"""The columns ``runs list`` shows as text (``--json`` has every field)."""

OMITTED = frozenset({"inputs", "outputs", "progress_snapshot", "provider_state", "usage"})
"""Bulky fields ``runs list --json`` leaves out (``runs show`` has them)."""


@click.group("runs")
def runs_group() -> None:
    """Customers' runs: list, inspect, cancel, refund."""


@runs_group.command("list")
@click.option("--account", "account_id", default=None, help="Only this account's runs.")
@click.option("--workflow", "workflow_id", default=None, help="Only this workflow's runs.")
@click.option(
    "--status", type=click.Choice([s.value for s in RunStatus]), default=None, help="Only these."
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@click.pass_context
def runs_list(
    ctx: click.Context,
    account_id: str | None,
    workflow_id: str | None,
    status: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Runs of every account, newest first."""

    async def work(db: Database) -> list[Run]:
        return await operator.list_runs(
            db, account_id=account_id, workflow_id=workflow_id, status=status, limit=limit
        )

    rows = [plain(run, omit=OMITTED) for run in run_db(ctx, work)]
    text = "\n".join("  ".join(str(row[k]) for k in LISTED) for row in rows) or "(none)"
    emit(rows, as_json=as_json, text=text)


@runs_group.command("show")
@click.argument("run_order_id")
@json_option
@click.pass_context
def runs_show(ctx: click.Context, run_order_id: str, as_json: bool) -> None:
    """A run: status, amounts, timestamps, failure, refunds and the tail of its log."""

    async def work(db: Database) -> operator.RunDetail:
        return await operator.describe_run(db, run_order_id)

    detail = run_db(ctx, work)
    data = {
        **plain(detail.run),
        "refunds": [plain(r) for r in detail.refunds],
        "log": [plain(e, omit={"id", "run_id"}) for e in detail.events],
    }
    emit(data, as_json=as_json, text=_show_text(data))


def _show_text(data: dict[str, Any]) -> str:
    d = data
    lines = [
        f"{d['id']} {d['status']} ({d['family']} of {d['workflow_id']}, account {d['account_id']})",
        f"quote {d['quote_amount']}  final {d['final_amount']}  released {d['released_amount']}",
        f"created {d['created_at']}  started {d['started_at']}  ended {d['terminal_at']}",
    ]
    if data["error_code"]:
        lines.append(f"failure {data['error_code']}: {data['error_detail']}")
    lines += [f"refund {r['id']} {r['amount']} {r['memo']!r}" for r in data["refunds"]]
    lines += [f"  {e['at']} {e['level']} {e['message']}" for e in data["log"]]
    return "\n".join(lines)


@runs_group.command("cancel")
@click.argument("run_order_id")
@json_option
@click.pass_context
def runs_cancel(ctx: click.Context, run_order_id: str, as_json: bool) -> None:
    """Cancel a run as its customer would: queued ends now (freeze released), running stops
    at its next step."""

    async def work(db: Database) -> CancelResult:
        return await operator.cancel_run(db, run_order_id)

    result = run_db(ctx, work)
    data = {"run_order_id": result.run.id, "outcome": result.outcome, "status": result.run.status}
    emit(data, as_json=as_json, text=f"{result.run.id} {result.outcome}")


@runs_group.command("refund")
@click.argument("run_order_id")
@click.option("--amount", default=None, help="Yuan to give back (default: all that is left).")
@click.option("--memo", required=True, help="Why; repeating a memo repeats nothing.")
@json_option
@click.pass_context
def runs_refund(
    ctx: click.Context, run_order_id: str, amount: str | None, memo: str, as_json: bool
) -> None:
    """Give back part or all of what an ended run was charged, as a compensating ledger entry
    (revenue → available). At most the run's final amount in all; idempotent per memo."""
    minor = None if amount is None else amount_of(amount, "--amount")

    async def work(db: Database) -> operator.Refund:
        return await operator.refund_run(db, run_order_id=run_order_id, amount=minor, memo=memo)

    refund = run_db(ctx, work)
    left = format_amount(refund.charged - refund.refunded)
    text = (
        f"{refund.id} refunded {format_amount(refund.amount)} CNY of {refund.run_id}"
        f"{' (already, same memo)' if refund.replay else ''}; {left} CNY left to refund; "
        f"{refund.account_id} available {format_amount(refund.available)} CNY"
    )
    emit(plain(refund), as_json=as_json, text=text)
