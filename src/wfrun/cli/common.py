"""What every admin command shares: the settings, the database (or the whole runtime),
``--json``, amounts, and turning a ServiceError into one line and an exit status.

Admin commands never migrate: a database behind this wfrun is refused in one line (exit 2)
naming ``wfrun db upgrade``, the one command (besides ``serve`` and ``worker``) that migrates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wfrun.cli.lazy import JSON_KEY, CommandError
from wfrun.domain.money import parse_amount
from wfrun.errors import ConfigError, ServiceError

if TYPE_CHECKING:
    from wfrun.config import Settings
    from wfrun.db.database import Database
    from wfrun.runtime import Runtime

T = TypeVar("T")


def _inherit_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    return bool(value or ctx.meta.get(JSON_KEY))


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_inherit_json,
    help="Machine-readable output and errors (also accepted before the command).",
)


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def amount_of(text: str, hint: str) -> int:
    """A plain decimal yuan amount (``12.50``, ``-3``) in minor units, or a usage error."""
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


async def _require_current(db: Database) -> None:
    from wfrun.db.schema_state import newest_revision, recorded_revision

    recorded, newest = await recorded_revision(db), newest_revision()
    if recorded != newest:
        raise CommandError(
            "DATABASE_NOT_CURRENT",
            f"the database is at revision {recorded or '(none)'}, this wfrun needs {newest}: "
            "run `wfrun db upgrade`",
            exit_code=2,
        )


async def _worked(
    db: Database, url: str, work: Callable[[Database], Awaitable[T]], *, current: bool
) -> T:
    """``work`` done on a database that answers (and is current): a wrong URL (no such
    database or user, refused credentials) is one line naming it (exit 2)."""
    try:
        if current:
            await _require_current(db)
        return await work(db)
    except (CommandError, ServiceError):
        raise
    except Exception as exc:
        from wfrun.db.probe import probe

        verdict = await probe(url)
        if verdict.problem and not verdict.transient:
            raise ConfigError(verdict.problem) from exc
        raise


def _run(coroutine: Coroutine[Any, Any, T], refusals: tuple[type[ServiceError], ...]) -> T:
    try:
        return asyncio.run(coroutine)
    except ServiceError as exc:
        overridable = isinstance(exc, refusals)  # the line names the flag that overrides it
        raise CommandError(exc.engine_code, exc.detail, exit_code=2 if overridable else 1) from None


def run_db(
    ctx: click.Context,
    work: Callable[[Database], Awaitable[T]],
    *,
    refusals: tuple[type[ServiceError], ...] = (),
    current: bool = True,
) -> T:
    """Open the database, check its schema is current (unless not ``current``), run ``work``
    with it, close it. A ServiceError prints one line and exits 1; one of ``refusals`` (a
    refusal the operator may override with a flag the line names) exits 2, like a usage
    error."""
    from wfrun.db.database import Database

    settings = settings_of(ctx)

    _usable_store(settings, create=not current)

    async def main() -> T:
        db = Database(settings.resolved_database_url)
        if db.is_sqlite:  # the default SQLite file lives there
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            return await _worked(db, settings.resolved_database_url, work, current=current)
        finally:
            await db.dispose()

    return _run(main(), refusals)


def _usable_store(settings: Settings, *, create: bool) -> None:
    """The data directory can be made and written; a SQLite database exists unless this
    command (``db upgrade``) creates it — a mistyped ``--data-dir`` creates nothing."""
    from wfrun.cli.startup import check_paths
    from wfrun.db.probe import sqlite_file

    check_paths(settings)
    database = sqlite_file(settings.resolved_database_url)
    if not create and database is not None and not database.exists():
        raise CommandError(
            "NO_DATABASE",
            f"no database at {database}: choose the data directory with --data-dir, or create "
            "one with `wfrun db upgrade` (or `wfrun serve`)",
            exit_code=2,
        )


def run_async(
    ctx: click.Context,
    work: Callable[[Runtime], Awaitable[T]],
    *,
    refusals: tuple[type[ServiceError], ...] = (),
) -> T:
    """Like :func:`run_db` with the whole runtime (storage, engines, Seedance), unmigrated."""
    from wfrun.runtime import build_runtime

    _usable_store(settings_of(ctx), create=False)

    async def main() -> T:
        runtime = await build_runtime(settings_of(ctx), migrate=False)
        try:
            await _require_current(runtime.db)
            return await work(runtime)
        finally:
            await runtime.close()

    return _run(main(), refusals)
