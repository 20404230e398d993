"""The ``wfrun`` command: serve, worker, and the operator's admin commands.

Admin commands talk to the services directly (no HTTP). Settings come from ``WFRUN_*``
variables and ``WFRUN_CONFIG``; ``--data-dir`` overrides the data directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from wfrun import __version__, logs
from wfrun.cli.accounts import accounts_group, keys_group
from wfrun.cli.checks import db, ledger_group, seedance_group
from wfrun.cli.config_cmd import config_group
from wfrun.cli.instances import instances_group
from wfrun.cli.packages import packages_group
from wfrun.cli.processes import serve, worker
from wfrun.cli.webhooks import webhooks_group
from wfrun.cli.workflows import workflows_group
from wfrun.config import Settings, load_settings
from wfrun.errors import ConfigError


@click.group()
@click.version_option(__version__, prog_name="wfrun")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (default .wfrun, or WFRUN_DATA_DIR).",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """wfrun: sell AI workflow runs over a chenyu-compatible API."""
    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    if isinstance(ctx.obj, Settings):  # embedding callers (and tests) pass settings in
        ctx.obj = ctx.obj.model_copy(update=overrides)
    else:
        ctx.obj = load_settings(**overrides)


def main() -> None:
    logs.configure(logs.settings_or_default())
    try:
        cli()
    except ConfigError as exc:  # a bad setting: one line, exit 2 (before anything is created)
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(2) from None


for _command in (
    serve,
    worker,
    db,
    accounts_group,
    keys_group,
    workflows_group,
    instances_group,
    ledger_group,
    seedance_group,
    webhooks_group,
    packages_group,
    config_group,
):
    cli.add_command(_command)
