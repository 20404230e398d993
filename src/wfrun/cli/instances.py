"""``wfrun instances``: the ComfyUI servers comfyui workflows run on."""

from __future__ import annotations

from typing import Any

import click

from wfrun.cli.common import json_option, run_db
from wfrun.cli.output import emit, plain
from wfrun.db.database import Database
from wfrun.services import instances

# ---- instances ---------------------------------------------------------------------------------


@click.group("instances")
def instances_group() -> None:
    """ComfyUI servers that run comfyui workflows."""


@instances_group.command("add")
@click.argument("url")
@click.option(
    "--capacity",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Prompts wfrun keeps queued on it at once (ComfyUI runs one at a time).",
)
@click.option("--label", "labels", multiple=True, help="key=value, e.g. gpu=a100 (repeatable).")
@json_option
@click.pass_context
def instances_add(
    ctx: click.Context, url: str, capacity: int, labels: tuple[str, ...], as_json: bool
) -> None:
    """Register a ComfyUI server at URL (e.g. http://10.0.0.5:8188)."""

    async def work(db: Database) -> Any:
        return await instances.add_instance(
            db, url=url, capacity=capacity, labels=instances.parse_labels(labels)
        )

    row = plain(run_db(ctx, work))
    emit(row, as_json=as_json, text=f"{row['id']} {row['url']}")


@instances_group.command("list")
@json_option
@click.pass_context
def instances_list(ctx: click.Context, as_json: bool) -> None:
    """List instances with state, health and runs in flight."""

    async def work(db: Database) -> Any:
        return [plain(r) for r in await instances.list_instances(db)]

    emit(run_db(ctx, work), as_json=as_json)


@instances_group.command("drain")
@click.argument("instance")
@click.option("--resume", is_flag=True, help="Take new runs again.")
@json_option
@click.pass_context
def instances_drain(ctx: click.Context, instance: str, resume: bool, as_json: bool) -> None:
    """Stop giving INSTANCE (id or URL) new runs; the ones it has finish."""

    async def work(db: Database) -> Any:
        return await instances.drain_instance(db, instance, resume=resume)

    row = plain(run_db(ctx, work))
    emit(row, as_json=as_json, text=f"{row['id']} {row['state']}")


@instances_group.command("remove")
@click.argument("instance")
@json_option
@click.pass_context
def instances_remove(ctx: click.Context, instance: str, as_json: bool) -> None:
    """Unregister INSTANCE (id or URL); refused while it has runs in flight."""

    async def work(db: Database) -> None:
        await instances.remove_instance(db, instance)

    run_db(ctx, work)
    emit({"removed": instance}, as_json=as_json, text=f"{instance} removed")
