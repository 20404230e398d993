"""Operator views for the console: every account's runs, the queue by lane, failing webhook
deliveries, the ledger check. Reads only; one short transaction each."""

from __future__ import annotations

from wfrun.db import console_views as views_db
from wfrun.db import run_list
from wfrun.db import runs as runs_db
from wfrun.db import workflows as workflows_db
from wfrun.db.audit import ledger_problems
from wfrun.db.console_views import LaneLoad
from wfrun.db.database import Database
from wfrun.db.runs import Run
from wfrun.db.webhook_deliveries import Delivery
from wfrun.db.workflows import Revision
from wfrun.errors import RevisionNotFound, RunNotFound
from wfrun.services.accounts import Principal
from wfrun.services.runs import CancelResult, cancel_run


async def all_runs(
    db: Database,
    *,
    account_id: str | None,
    workflow_id: str | None,
    status: str | None,
    page: int,
    size: int,
) -> tuple[list[Run], int]:
    async with db.transaction() as conn:
        return await run_list.list_runs(
            conn,
            account_id=account_id,
            workflow_id=workflow_id,
            status=status,
            limit=size,
            offset=(page - 1) * size,
        )


async def lane_loads(db: Database) -> list[LaneLoad]:
    async with db.transaction() as conn:
        return await views_db.lane_loads(conn)


async def failing_deliveries(db: Database, *, limit: int = 50) -> list[Delivery]:
    async with db.transaction() as conn:
        return await views_db.failing_deliveries(conn, limit=limit)


async def ledger_check(db: Database) -> list[str]:
    """The ledger invariants' violations (empty: the books balance)."""
    async with db.transaction() as conn:
        return await ledger_problems(conn)


async def cancel_any(db: Database, run_id: str) -> CancelResult:
    """An operator cancels any account's run (as that account would)."""
    async with db.transaction() as conn:
        run = await runs_db.find_run(conn, run_id)
    if run is None or run.family != "workflow":
        raise RunNotFound(f"run {run_id} does not exist")
    owner = Principal(run.account_id, "operator", "operator")
    return await cancel_run(db, owner, run_id)


async def revision(db: Database, revision_id: str) -> Revision:
    """One revision with its manifests and prices."""
    async with db.transaction() as conn:
        found = await workflows_db.find_revision(conn, revision_id)
    if found is None:
        raise RevisionNotFound(f"revision {revision_id} does not exist")
    return found
