"""Workflows and their immutable revisions. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)

from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none, records
from wfrun.db.schema import accounts, revisions, workflows


@dataclass(frozen=True, slots=True)
class Workflow:
    """A ``workflows`` row."""

    id: str
    owner_id: str
    slug: str
    title: str
    description: str
    tags: list[str]
    visibility: str
    cover_url: str | None
    published_revision_id: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    """Set when the operator archived it: unpublished, refused for new runs, hidden."""


@dataclass(frozen=True, slots=True)
class Revision:
    """A ``revisions`` row (immutable once written, but for wfrun's own system revision)."""

    id: str
    workflow_id: str
    number: int
    engine_kind: str
    payload: dict[str, Any]
    input_manifest: list[dict[str, Any]]
    output_manifest: list[dict[str, Any]]
    prices: dict[str, Any]
    timeout_seconds: int
    output_retention_hours: int | None
    required_labels: dict[str, str] | None
    package: dict[str, Any]
    max_queue_seconds: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RevisionSummary:
    """A revision as the operator lists them."""

    id: str
    number: int
    engine_kind: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MarketItem:
    """A workflow as the market lists it: with its owner's name and one revision's prices."""

    id: str
    owner_id: str
    owner_name: str
    title: str
    description: str
    tags: list[str]
    cover_url: str | None
    updated_at: datetime
    revision_id: str
    prices: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WorkflowRevision(MarketItem):
    """A workflow joined with one of its revisions (the published one, or one pinned at
    submit): what the market detail shows and what a submit runs."""

    revision_number: int
    engine_kind: str
    payload: dict[str, Any]
    input_manifest: list[dict[str, Any]]
    output_manifest: list[dict[str, Any]]
    timeout_seconds: int
    output_retention_hours: int | None
    required_labels: dict[str, str] | None
    max_queue_seconds: int | None


async def find_by_slug(conn: Connection, owner_id: str, slug: str) -> Workflow | None:
    query = select(workflows).where(workflows.c.owner_id == owner_id, workflows.c.slug == slug)
    return record_or_none(Workflow, (await conn.execute(query)).mappings().first())


async def find_workflow(conn: Connection, workflow_id: str) -> Workflow | None:
    query = select(workflows).where(workflows.c.id == workflow_id)
    return record_or_none(Workflow, (await conn.execute(query)).mappings().first())


async def insert_workflow(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(workflows), values)


async def update_workflow(conn: Connection, workflow_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(**values))


async def next_revision_number(conn: Connection, workflow_id: str) -> int:
    query = select(func.coalesce(func.max(revisions.c.number), 0)).where(
        revisions.c.workflow_id == workflow_id
    )
    return int((await conn.execute(query)).scalar_one()) + 1


async def insert_revision(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(revisions), values)


async def update_revision(conn: Connection, revision_id: str, values: dict[str, Any]) -> None:
    """Only for wfrun's own system revision (model runs), whose prices follow settings."""
    await conn.execute(update(revisions).where(revisions.c.id == revision_id).values(**values))


async def find_revision(conn: Connection, revision_id: str) -> Revision | None:
    query = select(revisions).where(revisions.c.id == revision_id)
    return record_or_none(Revision, (await conn.execute(query)).mappings().first())


async def list_revisions(conn: Connection, workflow_id: str) -> list[RevisionSummary]:
    query = (
        select(revisions.c.id, revisions.c.number, revisions.c.engine_kind, revisions.c.created_at)
        .where(revisions.c.workflow_id == workflow_id)
        .order_by(revisions.c.number)
    )
    return records(RevisionSummary, (await conn.execute(query)).mappings())


def _visible_to(account_id: str) -> ColumnElement[bool]:
    return or_(workflows.c.visibility == "public", workflows.c.owner_id == account_id)


_MARKET_COLUMNS = (
    workflows.c.id,
    workflows.c.owner_id,
    accounts.c.display_name.label("owner_name"),
    workflows.c.title,
    workflows.c.description,
    workflows.c.tags,
    workflows.c.cover_url,
    workflows.c.updated_at,
    revisions.c.id.label("revision_id"),
    revisions.c.prices,
)
"""What :class:`MarketItem` reads."""

_REVISION_COLUMNS = (
    *_MARKET_COLUMNS,
    revisions.c.number.label("revision_number"),
    revisions.c.engine_kind,
    revisions.c.payload,
    revisions.c.input_manifest,
    revisions.c.output_manifest,
    revisions.c.timeout_seconds,
    revisions.c.output_retention_hours,
    revisions.c.required_labels,
    revisions.c.max_queue_seconds,
)
"""What :class:`WorkflowRevision` reads."""


def _with_revision(columns: Sequence[Any], revision_join: ColumnElement[bool]) -> Any:
    return (
        select(*columns)
        .join(accounts, accounts.c.id == workflows.c.owner_id)
        .join(revisions, revision_join)
    )


async def find_for_submit(
    conn: Connection,
    *,
    account_id: str,
    workflow_id: str,
    revision_id: str | None,
    system: bool = False,
) -> WorkflowRevision | None:
    """The workflow (visible to the account, or wfrun's own ``system`` one) joined with the
    requested or published revision. An archived workflow has none; a pinned revision of an
    unpublished workflow runs only for its owner (who tries it before publishing)."""
    if revision_id is None:
        join = revisions.c.id == workflows.c.published_revision_id
    else:
        join = (revisions.c.id == revision_id) & (revisions.c.workflow_id == workflows.c.id)
        join &= workflows.c.published_revision_id.is_not(None) | (
            workflows.c.owner_id == account_id
        )
    visible = workflows.c.visibility == "system" if system else _visible_to(account_id)
    query = _with_revision(_REVISION_COLUMNS, join).where(
        workflows.c.id == workflow_id, visible, workflows.c.archived_at.is_(None)
    )
    return record_or_none(WorkflowRevision, (await conn.execute(query)).mappings().first())


async def market_page(
    conn: Connection,
    *,
    account_id: str,
    keyword: str | None,
    tag: str | None,
    limit: int,
    offset: int,
) -> tuple[list[MarketItem], int]:
    """Published workflows visible to the account, newest first, with the total count."""
    conditions = [_visible_to(account_id), workflows.c.archived_at.is_(None)]
    if keyword:
        conditions.append(workflows.c.title.ilike(f"%{_escape_like(keyword)}%", escape="\\"))
    if tag:
        conditions.append(
            cast(workflows.c.tags, String).like(f'%"{_escape_like(tag)}"%', escape="\\")
        )
    published = revisions.c.id == workflows.c.published_revision_id
    base = _with_revision(_MARKET_COLUMNS, published).where(*conditions)
    total_query = select(func.count()).select_from(base.subquery())
    total = int((await conn.execute(total_query)).scalar_one())
    query = base.order_by(workflows.c.updated_at.desc(), workflows.c.id).limit(limit).offset(offset)
    return records(MarketItem, (await conn.execute(query)).mappings()), total


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_workflows(conn: Connection, *, archived: bool = True) -> list[Workflow]:
    """Every workflow, oldest first (without ``archived``: not the archived ones)."""
    query = select(workflows).order_by(workflows.c.created_at)
    if not archived:
        query = query.where(workflows.c.archived_at.is_(None))
    return records(Workflow, (await conn.execute(query)).mappings())
