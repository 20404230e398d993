"""``wfrun workflows``: import packages, publish revisions, look at the catalogue."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from wfrun.cli.common import json_option, run_async
from wfrun.cli.output import emit, plain
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances

# ---- workflows ---------------------------------------------------------------------------------


@click.group("workflows")
def workflows_group() -> None:
    """Workflow packages, revisions and publishing."""


@workflows_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--owner", "owner_id", required=True, help="Account that owns the workflow.")
@click.option("--publish", is_flag=True, help="Publish the new revision immediately.")
@json_option
@click.pass_context
def workflows_import(
    ctx: click.Context, file: Path, owner_id: str, publish: bool, as_json: bool
) -> None:
    """Import a workflow package FILE (see docs/workflow-package.md) as a new revision."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        click.echo(f"error: INVALID_WORKFLOW_PACKAGE: {file} is not JSON: {exc}", err=True)
        sys.exit(1)

    async def work(rt: Runtime) -> catalog.ImportResult:
        info = None
        if isinstance(document, dict) and document.get("engine") == "comfyui":
            info = await instances.fetch_object_info(rt.db)
        return await catalog.import_package(
            rt.db, owner_id=owner_id, document=document, publish=publish, object_info=info
        )

    result = run_async(ctx, work)
    data = {
        "workflow_id": result.workflow_id,
        "revision_id": result.revision_id,
        "revision_number": result.revision_number,
        "created_workflow": result.created_workflow,
        "published": result.published,
    }
    emit(
        data,
        as_json=as_json,
        text=f"{result.workflow_id} revision {result.revision_number} ({result.revision_id})"
        + (" published" if publish else ""),
    )


@workflows_group.command("publish")
@click.argument("workflow_id")
@click.option("--revision", "revision_id", default=None, help="Default: the newest revision.")
@json_option
@click.pass_context
def workflows_publish(
    ctx: click.Context, workflow_id: str, revision_id: str | None, as_json: bool
) -> None:
    """Publish a revision of WORKFLOW_ID."""

    async def work(rt: Runtime) -> str:
        return await catalog.publish(rt.db, workflow_id=workflow_id, revision_id=revision_id)

    chosen = run_async(ctx, work)
    emit(
        {"workflow_id": workflow_id, "published_revision_id": chosen},
        as_json=as_json,
        text=f"{workflow_id} now serves {chosen}",
    )


@workflows_group.command("list")
@json_option
@click.pass_context
def workflows_list(ctx: click.Context, as_json: bool) -> None:
    """List workflows."""

    async def work(rt: Runtime) -> Any:
        return [plain(r) for r in await catalog.list_all(rt.db)]

    emit(run_async(ctx, work), as_json=as_json)


@workflows_group.command("show")
@click.argument("workflow_id")
@json_option
@click.pass_context
def workflows_show(ctx: click.Context, workflow_id: str, as_json: bool) -> None:
    """Show a workflow and its revisions."""

    async def work(rt: Runtime) -> Any:
        detail = await catalog.describe(rt.db, workflow_id)
        return {**plain(detail.workflow), "revisions": [plain(r) for r in detail.revisions]}

    emit(run_async(ctx, work), as_json=True)  # nested data reads best as JSON either way
