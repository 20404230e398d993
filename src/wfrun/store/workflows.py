"""Workflows and their immutable revisions. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    String,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from wfrun.store.schema import accounts, revisions, workflows


async def find_by_slug(conn: AsyncConnection, owner_id: str, slug: str) -> RowMapping | None:
    query = select(workflows).where(workflows.c.owner_id == owner_id, workflows.c.slug == slug)
    return (await conn.execute(query)).mappings().first()


async def find_workflow(conn: AsyncConnection, workflow_id: str) -> RowMapping | None:
    query = select(workflows).where(workflows.c.id == workflow_id)
    return (await conn.execute(query)).mappings().first()


async def insert_workflow(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(workflows), values)


async def update_workflow(conn: AsyncConnection, workflow_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(**values))


async def next_revision_number(conn: AsyncConnection, workflow_id: str) -> int:
    query = select(func.coalesce(func.max(revisions.c.number), 0)).where(
        revisions.c.workflow_id == workflow_id
    )
    return int((await conn.execute(query)).scalar_one()) + 1


async def insert_revision(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(revisions), values)


async def update_revision(conn: AsyncConnection, revision_id: str, values: dict[str, Any]) -> None:
    """Only for wfrun's own system revision (model runs), whose prices follow settings."""
    await conn.execute(update(revisions).where(revisions.c.id == revision_id).values(**values))


async def find_revision(conn: AsyncConnection, revision_id: str) -> RowMapping | None:
    query = select(revisions).where(revisions.c.id == revision_id)
    return (await conn.execute(query)).mappings().first()


async def list_revisions(conn: AsyncConnection, workflow_id: str) -> Sequence[RowMapping]:
    query = (
        select(revisions.c.id, revisions.c.number, revisions.c.engine_kind, revisions.c.created_at)
        .where(revisions.c.workflow_id == workflow_id)
        .order_by(revisions.c.number)
    )
    return (await conn.execute(query)).mappings().all()


def _visible_to(account_id: str) -> ColumnElement[bool]:
    return or_(workflows.c.visibility == "public", workflows.c.owner_id == account_id)


def _with_revision(revision_join: ColumnElement[bool]) -> Any:
    return (
        select(
            workflows,
            accounts.c.display_name.label("owner_name"),
            revisions.c.id.label("revision_id"),
            revisions.c.number.label("revision_number"),
            revisions.c.engine_kind,
            revisions.c.payload,
            revisions.c.input_manifest,
            revisions.c.output_manifest,
            revisions.c.prices,
            revisions.c.timeout_seconds,
        )
        .join(accounts, accounts.c.id == workflows.c.owner_id)
        .join(revisions, revision_join)
    )


async def find_for_submit(
    conn: AsyncConnection,
    *,
    account_id: str,
    workflow_id: str,
    revision_id: str | None,
    system: bool = False,
) -> RowMapping | None:
    """The workflow (visible to the account, or wfrun's own ``system`` one) joined with the
    requested or published revision."""
    if revision_id is None:
        join = revisions.c.id == workflows.c.published_revision_id
    else:
        join = (revisions.c.id == revision_id) & (revisions.c.workflow_id == workflows.c.id)
    visible = workflows.c.visibility == "system" if system else _visible_to(account_id)
    query = _with_revision(join).where(workflows.c.id == workflow_id, visible)
    return (await conn.execute(query)).mappings().first()


async def market_page(
    conn: AsyncConnection,
    *,
    account_id: str,
    keyword: str | None,
    tag: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[RowMapping], int]:
    """Published workflows visible to the account, newest first, with the total count."""
    conditions = [_visible_to(account_id)]
    if keyword:
        conditions.append(workflows.c.title.ilike(f"%{_escape_like(keyword)}%", escape="\\"))
    if tag:
        conditions.append(
            cast(workflows.c.tags, String).like(f'%"{_escape_like(tag)}"%', escape="\\")
        )
    base = _with_revision(revisions.c.id == workflows.c.published_revision_id).where(*conditions)
    total_query = select(func.count()).select_from(base.subquery())
    total = int((await conn.execute(total_query)).scalar_one())
    query = base.order_by(workflows.c.updated_at.desc(), workflows.c.id).limit(limit).offset(offset)
    return (await conn.execute(query)).mappings().all(), total


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_workflows(conn: AsyncConnection) -> Sequence[RowMapping]:
    return (await conn.execute(select(workflows).order_by(workflows.c.created_at))).mappings().all()
