"""What every admin command shares: the settings, the runtime, ``--json``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from wfrun.config import Settings
from wfrun.errors import ServiceError
from wfrun.runtime import Runtime, build_runtime

T = TypeVar("T")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def run_async(
    ctx: click.Context,
    work: Callable[[Runtime], Awaitable[T]],
    *,
    refusals: tuple[type[ServiceError], ...] = (),
) -> T:
    """Build a runtime, run ``work`` with it, close it. A ServiceError prints one line and
    exits with status 1; one of ``refusals`` (a refusal the operator may override with a
    flag the line names) exits with 2, like a usage error."""

    async def main() -> T:
        runtime = await build_runtime(settings_of(ctx))
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        click.echo(f"error: {exc.engine_code}: {exc.detail}", err=True)
        sys.exit(2 if isinstance(exc, refusals) else 1)
