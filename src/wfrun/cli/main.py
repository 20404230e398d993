"""The ``wfrun`` command: serve, worker, and the operator's admin commands.

Admin commands talk to the services directly (no HTTP). Settings come from ``WFRUN_*``
variables and ``WFRUN_CONFIG``; ``--data-dir`` overrides the data directory. ``--data-dir`` and
``--json`` are global: accepted before or after the command. Commands are imported only when
invoked (:class:`~wfrun.cli.lazy.LazyGroup`): add one to :data:`COMMANDS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from wfrun import __version__
from wfrun.cli.lazy import JSON_KEY, Lazy, RootGroup

COMMANDS = (
    Lazy("serve", "wfrun.cli.processes:serve", "Run the HTTP API (and a worker)."),
    Lazy("worker", "wfrun.cli.processes:worker", "Run a worker: execute queued runs."),
    Lazy("db", "wfrun.cli.checks:db", "Database schema (migrations)."),
    Lazy("accounts", "wfrun.cli.accounts:accounts_group", "Customer accounts and balances."),
    Lazy("keys", "wfrun.cli.accounts:keys_group", "API keys (shown once, stored hashed)."),
    Lazy("runs", "wfrun.cli.runs:runs_group", "Customers' runs: list, inspect, cancel, refund."),
    Lazy("workflows", "wfrun.cli.workflows:workflows_group", "Workflow packages and publishing."),
    Lazy("instances", "wfrun.cli.instances:instances_group", "ComfyUI servers."),
    Lazy("ledger", "wfrun.cli.checks:ledger_group", "Books."),
    Lazy("seedance", "wfrun.cli.checks:seedance_group", "Volcengine Ark (Seedance video)."),
    Lazy("webhooks", "wfrun.cli.webhooks:webhooks_group", "Accounts' webhook endpoints."),
    Lazy("packages", "wfrun.cli.packages:packages_group", "Author workflow packages."),
    Lazy("config", "wfrun.cli.config_cmd:config_group", "The effective settings."),
)
"""Every command of ``wfrun``: name, ``module:attribute``, the line ``wfrun --help`` shows."""

EPILOG = (
    "--data-dir and --json may also follow the command. Under --json a command prints one "
    'JSON document on stdout, an error too: {"error": {"code": ..., "detail": ...}}. '
    "Exit status: 0 ok, 1 failed or refused, 2 misused (options, configuration, database)."
)


@click.group(cls=RootGroup, lazy=COMMANDS, epilog=EPILOG)
@click.version_option(__version__, prog_name="wfrun")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (default .wfrun, or WFRUN_DATA_DIR).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output and errors.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, as_json: bool) -> None:
    """wfrun: sell AI workflow runs over a chenyu-compatible API."""
    from wfrun.config import Settings, load_settings  # pydantic: only once a command runs

    ctx.meta[JSON_KEY] = as_json
    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    if isinstance(ctx.obj, Settings):  # embedding callers (and tests) pass settings in,
        ctx.obj = ctx.obj.model_copy(update=overrides)  # and keep their own logging
        return
    ctx.obj = load_settings(**overrides)
    from wfrun import logs  # structlog itself loads with the first line written

    logs.configure(ctx.obj.log)


def main() -> None:
    cli()
