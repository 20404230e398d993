"""Workflows and revisions: import packages, publish, and the market views.

Each public function is one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wfrun import ids
from wfrun.clock import utcnow
from wfrun.db import workflows as workflows_db
from wfrun.db.accounts import get_account
from wfrun.db.database import Connection, Database
from wfrun.db.workflows import MarketItem, Revision, RevisionSummary, Workflow, WorkflowRevision
from wfrun.domain import manifest as m
from wfrun.domain.pricing import PriceTable
from wfrun.domain.revisions import RevisionSpec
from wfrun.errors import NotPublished, RevisionNotFound, WorkflowNotFound
from wfrun.services.instance_check import (
    STRICT,
    CheckOptions,
    NodeCheck,
    check_package,
    check_revision,
)
from wfrun.services.packages import (
    Package,
    input_specs,
    output_specs,
    parse_package,
    price_table,
)


def revision_spec(revision: Revision | WorkflowRevision) -> RevisionSpec:
    """Decode a stored revision (alone, or joined with its workflow) for a run."""
    return RevisionSpec(
        revision_id=revision.id if isinstance(revision, Revision) else revision.revision_id,
        engine_kind=revision.engine_kind,
        payload=revision.payload,
        inputs=tuple(m.input_from_json(d) for d in revision.input_manifest),
        outputs=tuple(m.output_from_json(d) for d in revision.output_manifest),
        prices=_price_table(revision.prices),
        timeout_seconds=revision.timeout_seconds,
        output_retention_hours=revision.output_retention_hours,
        required_labels=dict(revision.required_labels or {}),
        max_queue_seconds=revision.max_queue_seconds,
    )


def _price_table(stored: Mapping[str, Any]) -> PriceTable:
    tokens = {k: (int(v[0]), int(v[1])) for k, v in (stored.get("token_prices") or {}).items()}
    return PriceTable(**{**stored, "token_prices": tokens})


@dataclass(frozen=True)
class ImportResult:
    workflow_id: str
    revision_id: str
    revision_number: int
    created_workflow: bool
    published: bool
    node_check: NodeCheck


async def import_package(
    db: Database,
    *,
    owner_id: str,
    document: Any,
    publish: bool = False,
    options: CheckOptions = STRICT,
) -> ImportResult:
    """Validate a package and store it as a new revision (a new workflow on first import).

    A ``comfyui`` package is checked against the instances able to run it
    (:mod:`wfrun.services.instance_check`), before anything is stored.

    Raises:
        InvalidWorkflowPackage: the package is invalid (nothing is stored).
        NoAbleInstance, InstancesUnreachable: see :func:`instance_check.check_package`.
        AccountNotFound: no such owner.
    """
    package = parse_package(document)
    inputs = input_specs(package)
    checked = await check_package(
        db,
        kind=package.engine,
        graph=package.graph,
        specs=inputs,
        required_labels=package.required_labels,
        options=options,
    )
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await get_account(conn, owner_id)
        workflow_id, created = await _upsert_workflow(conn, owner_id, package, now)
        number = await workflows_db.next_revision_number(conn, workflow_id)
        revision = _revision_values(package, workflow_id, number, now)
        await workflows_db.insert_revision(conn, revision)
        if publish:
            await workflows_db.update_workflow(
                conn, workflow_id, {"published_revision_id": revision["id"], "archived_at": None}
            )
    return ImportResult(workflow_id, revision["id"], number, created, publish, checked)


async def _upsert_workflow(
    conn: Connection, owner_id: str, package: Package, now: datetime
) -> tuple[str, bool]:
    """The id of the owner's workflow with the package's slug (updated from the package, or
    created); and whether it was created."""
    existing = await workflows_db.find_by_slug(conn, owner_id, package.slug)
    meta = {
        "title": package.title,
        "description": package.description,
        "tags": package.tags,
        "visibility": package.visibility,
        "cover_url": package.cover_url,
        "updated_at": now,
    }
    if existing is not None:
        await workflows_db.update_workflow(conn, existing.id, meta)
        return existing.id, False
    workflow_id = ids.new_workflow_id()
    values = {"id": workflow_id, "owner_id": owner_id, "slug": package.slug, "created_at": now}
    await workflows_db.insert_workflow(conn, values | meta)
    return workflow_id, True


def _revision_values(
    package: Package, workflow_id: str, number: int, now: datetime
) -> dict[str, Any]:
    return {
        "id": ids.new_revision_id(),
        "workflow_id": workflow_id,
        "number": number,
        "engine_kind": package.engine,
        "payload": package.graph,
        "input_manifest": [m.input_to_json(s) for s in input_specs(package)],
        "output_manifest": [m.output_to_json(s) for s in output_specs(package)],
        "prices": _prices_json(price_table(package)),
        "timeout_seconds": package.timeout_seconds,
        "output_retention_hours": package.output_retention_hours,
        "required_labels": dict(sorted(package.required_labels.items())),
        "package": package.model_dump(mode="json"),
        "max_queue_seconds": package.max_queue_seconds,
        "created_at": now,
    }


def _prices_json(prices: PriceTable) -> dict[str, Any]:
    return {
        "fixed_fee": prices.fixed_fee,
        "price_per_second": prices.price_per_second,
        "estimated_seconds": prices.estimated_seconds,
        "external_estimate": prices.external_estimate,
        "may_incur_external_model_cost": prices.may_incur_external_model_cost,
        "external_cost_notice": prices.external_cost_notice,
        "token_prices": {k: list(v) for k, v in prices.token_prices.items()},
    }


@dataclass(frozen=True)
class PublishResult:
    revision_id: str
    node_check: NodeCheck


async def publish(
    db: Database,
    *,
    workflow_id: str,
    revision_id: str | None,
    options: CheckOptions = STRICT,
) -> PublishResult:
    """Make a revision (default: the newest) the published one, once it passed the same
    instance check as an import (an instance registered since may now check it).

    Raises:
        WorkflowNotFound, RevisionNotFound: no such workflow or revision of it.
        NoAbleInstance, InstancesUnreachable: see :func:`instance_check.check_package`.
    """
    async with db.transaction() as conn:
        workflow = await _get_workflow(conn, workflow_id)
        revisions = await workflows_db.list_revisions(conn, workflow_id)
        chosen = revision_id or revisions[-1].id
        revision = await workflows_db.find_revision(conn, chosen)
    if revision is None or revision.workflow_id != workflow.id:
        raise RevisionNotFound(f"revision {chosen} is not a revision of {workflow_id}")
    checked = await check_revision(db, revision, options)
    async with db.transaction(write=True) as conn:
        await workflows_db.update_workflow(
            conn,
            workflow.id,
            {"published_revision_id": chosen, "archived_at": None, "updated_at": utcnow()},
        )
    return PublishResult(chosen, checked)


async def _get_workflow(conn: Connection, workflow_id: str) -> Workflow:
    workflow = await workflows_db.find_workflow(conn, workflow_id)
    if workflow is None:
        raise WorkflowNotFound(f"workflow {workflow_id} does not exist")
    return workflow


async def list_all(db: Database, *, archived: bool = True) -> list[Workflow]:
    """Every workflow (without ``archived``: not those the operator archived)."""
    async with db.transaction() as conn:
        return await workflows_db.list_workflows(conn, archived=archived)


@dataclass(frozen=True)
class WorkflowDetail:
    """Operator view: a workflow with its revisions."""

    workflow: Workflow
    revisions: list[RevisionSummary]


async def describe(db: Database, workflow_id: str) -> WorkflowDetail:
    async with db.read() as conn:
        workflow = await _get_workflow(conn, workflow_id)
        revisions = await workflows_db.list_revisions(conn, workflow_id)
    return WorkflowDetail(workflow, revisions)


async def market_page(
    db: Database, *, account_id: str, keyword: str | None, tag: str | None, page: int, size: int
) -> tuple[list[MarketItem], int]:
    async with db.read() as conn:
        return await workflows_db.market_page(
            conn,
            account_id=account_id,
            keyword=keyword,
            tag=tag,
            limit=size,
            offset=(page - 1) * size,
        )


async def market_info(db: Database, *, account_id: str, workflow_id: str) -> WorkflowRevision:
    """The published revision of a workflow visible to the account."""
    async with db.read() as conn:
        row = await workflows_db.find_for_submit(
            conn, account_id=account_id, workflow_id=workflow_id, revision_id=None
        )
        if row is None:
            workflow = await workflows_db.find_workflow(conn, workflow_id)
            if workflow is not None and _visible(workflow, account_id):
                raise NotPublished(f"workflow {workflow_id} has no published revision")
            raise WorkflowNotFound(f"workflow {workflow_id} does not exist")
    return row


def _visible(workflow: Workflow, account_id: str) -> bool:
    return workflow.visibility == "public" or workflow.owner_id == account_id
