"""``wfrun workflows``: import packages, publish revisions, look at the catalogue."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from wfrun.cli.common import json_option, run_db
from wfrun.cli.lazy import fail
from wfrun.cli.output import emit, plain
from wfrun.db.database import Database
from wfrun.errors import InstancesUnreachable, NoAbleInstance
from wfrun.services import catalog, operator
from wfrun.services.instance_check import CheckOptions, NodeCheck

# ---- workflows ---------------------------------------------------------------------------------


@click.group("workflows")
def workflows_group() -> None:
    """Workflow packages, revisions and publishing."""


REFUSALS = (NoAbleInstance, InstancesUnreachable)
"""Refused imports/publishes the operator may override with the flag the error names."""


F = TypeVar("F", bound=Callable[..., None])


def _check_options(func: F) -> F:
    func = click.option(
        "--skip-node-check",
        is_flag=True,
        help="comfyui: accept when no able instance answers /object_info (graph not checked).",
    )(func)
    return click.option(
        "--allow-no-instance",
        is_flag=True,
        help="comfyui: accept although no registered instance is able to run it (yet).",
    )(func)


def _notes(check: NodeCheck) -> str:
    checked = [f"checked against {url}/object_info" for url in check.checked_against]
    return "".join(f"\n  {line}" for line in (*checked, *check.notes))


def _check_data(check: NodeCheck) -> dict[str, Any]:
    return {"checked_against": list(check.checked_against), "notes": list(check.notes)}


@workflows_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--owner", "owner_id", required=True, help="Account that owns the workflow.")
@click.option("--publish", is_flag=True, help="Publish the new revision immediately.")
@_check_options
@json_option
@click.pass_context
def workflows_import(
    ctx: click.Context,
    file: Path,
    owner_id: str,
    publish: bool,
    as_json: bool,
    allow_no_instance: bool,
    skip_node_check: bool,
) -> None:
    """Import a workflow package FILE (see docs/workflow-package.md) as a new revision.

    A comfyui package needs a registered instance able to run it (active, with its
    required_labels), and its graph is checked against those instances' /object_info."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail("INVALID_WORKFLOW_PACKAGE", f"{file} is not JSON: {exc}")

    options = CheckOptions(allow_no_instance=allow_no_instance, skip_node_check=skip_node_check)

    async def work(db: Database) -> catalog.ImportResult:
        return await catalog.import_package(
            db, owner_id=owner_id, document=document, publish=publish, options=options
        )

    result = run_db(ctx, work, refusals=REFUSALS)
    emit(
        _import_data(result),
        as_json=as_json,
        text=f"{result.workflow_id} revision {result.revision_number} ({result.revision_id})"
        + (" published" if publish else "")
        + _notes(result.node_check),
    )


def _import_data(result: catalog.ImportResult) -> dict[str, Any]:
    return {
        "workflow_id": result.workflow_id,
        "revision_id": result.revision_id,
        "revision_number": result.revision_number,
        "created_workflow": result.created_workflow,
        "published": result.published,
        **_check_data(result.node_check),
    }


@workflows_group.command("publish")
@click.argument("workflow_id")
@click.option("--revision", "revision_id", default=None, help="Default: the newest revision.")
@_check_options
@json_option
@click.pass_context
def workflows_publish(
    ctx: click.Context,
    workflow_id: str,
    revision_id: str | None,
    as_json: bool,
    allow_no_instance: bool,
    skip_node_check: bool,
) -> None:
    """Publish a revision of WORKFLOW_ID (comfyui: checked as at import)."""

    options = CheckOptions(allow_no_instance=allow_no_instance, skip_node_check=skip_node_check)

    async def work(db: Database) -> catalog.PublishResult:
        return await catalog.publish(
            db, workflow_id=workflow_id, revision_id=revision_id, options=options
        )

    result = run_db(ctx, work, refusals=REFUSALS)
    emit(
        {
            "workflow_id": workflow_id,
            "published_revision_id": result.revision_id,
            **_check_data(result.node_check),
        },
        as_json=as_json,
        text=f"{workflow_id} now serves {result.revision_id}" + _notes(result.node_check),
    )


@workflows_group.command("list")
@click.option("--all", "archived", is_flag=True, help="Archived workflows too.")
@json_option
@click.pass_context
def workflows_list(ctx: click.Context, archived: bool, as_json: bool) -> None:
    """List workflows (not the archived ones, unless --all)."""

    async def work(db: Database) -> Any:
        return [plain(r) for r in await catalog.list_all(db, archived=archived)]

    emit(run_db(ctx, work), as_json=as_json)


@workflows_group.command("show")
@click.argument("workflow_id")
@json_option
@click.pass_context
def workflows_show(ctx: click.Context, workflow_id: str, as_json: bool) -> None:
    """Show a workflow and its revisions."""

    async def work(db: Database) -> Any:
        detail = await catalog.describe(db, workflow_id)
        return {**plain(detail.workflow), "revisions": [plain(r) for r in detail.revisions]}

    emit(run_db(ctx, work), as_json=True)  # nested data reads best as JSON either way


@workflows_group.command("unpublish")
@click.argument("workflow_id")
@json_option
@click.pass_context
def workflows_unpublish(ctx: click.Context, workflow_id: str, as_json: bool) -> None:
    """Take WORKFLOW_ID off the market: new runs are refused, runs in flight finish
    (``publish`` puts it back)."""

    async def work(db: Database) -> Any:
        return plain(await operator.unpublish_workflow(db, workflow_id))

    emit(run_db(ctx, work), as_json=as_json, text=f"{workflow_id} unpublished")


@workflows_group.command("archive")
@click.argument("workflow_id")
@json_option
@click.pass_context
def workflows_archive(ctx: click.Context, workflow_id: str, as_json: bool) -> None:
    """Unpublish WORKFLOW_ID and hide it from ``workflows list`` (``--all`` shows it;
    ``publish`` brings it back)."""

    async def work(db: Database) -> Any:
        return plain(await operator.archive_workflow(db, workflow_id))

    emit(run_db(ctx, work), as_json=as_json, text=f"{workflow_id} archived")
