"""The ``wfrun`` command as a whole: ``--json`` on every command (errors included), the global
options in any position, admin commands that never migrate, and lazy imports (no timing here:
what a command imports is checked in a fresh interpreter)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from wfrun.cli.config_cmd import mask_url_password
from wfrun.cli.lazy import hoist
from wfrun.cli.main import COMMANDS, cli
from wfrun.config import Settings
from wfrun.db.database import Database
from wfrun.db.migrate import head_revision
from wfrun.db.schema_state import newest_revision, recorded_revision

LONG_RUNNING = {("serve",), ("worker",)}
RESULTS_ON_FAILURE = {("ledger", "check"), ("seedance", "check")}
"""Commands whose non-zero exit carries a result (the failed checks), not an error."""


def leaf_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    """Every runnable command, by path, loading each lazily registered one."""
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(path: tuple[str, ...], command: click.Command) -> None:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                walk((*path, name), sub)
        else:
            found.append((path, command))

    walk((), cli)
    return found


def placeholders(command: click.Command) -> list[str]:
    """Arguments that satisfy the parser but name nothing that exists."""
    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument) and param.required:
            args.append("x_missing")
        elif isinstance(param, click.Option) and param.required:
            args += [param.opts[0], "x_missing"]
    return args


def call(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=settings, catch_exceptions=False)


def test_every_command_prints_json_under_json_errors_included(settings, invoke):
    """(``invoke``: the database starts empty.)"""
    commands = [(path, cmd) for path, cmd in leaf_commands() if path not in LONG_RUNNING]
    assert len(commands) >= 30
    for path, command in commands:
        assert "--json" in {opt for p in command.params for opt in p.opts}, path
        result = call(settings, *path, *placeholders(command), "--json")
        document = json.loads(result.stdout)  # one document, whatever happened
        if result.exit_code != 0 and path not in RESULTS_ON_FAILURE:
            assert set(document) == {"error"}, (path, document)
            assert {type(v) for v in document["error"].values()} == {str}, (path, document)
            assert document["error"]["code"], (path, document)
            assert document["error"]["detail"], (path, document)
            assert result.exit_code in (1, 2), (path, result.exit_code)


@pytest.mark.parametrize(
    ("args", "code", "detail"),
    [
        (("worker", "--concurrency", "0"), 2, "Invalid value for '--concurrency'"),
        (("serve", "--port", "eighty"), 2, "Invalid value for '--port'"),
        (("no-such-command",), 2, "No such command 'no-such-command'."),
        (("accounts", "topup", "user_x", "12,5"), 2, "'12,5' is not a plain decimal amount"),
        (("runs", "refund", "wfrun_x", "--amount", "1e1", "--memo", "m"), 2, "'1e1' is not a"),
    ],
)
def test_usage_errors_are_json_too(settings, invoke, args, code, detail):
    for where in ("before", "after"):
        line = ["--json", *args] if where == "before" else [*args, "--json"]
        result = call(settings, *line)
        assert result.exit_code == code, result.output
        error = json.loads(result.stdout)["error"]
        assert error["code"] in {"USAGE_ERROR", "INVALID_PARAMETER"}
        assert detail in error["detail"]


def test_errors_without_json_are_one_line_on_stderr(settings, invoke):
    result = call(settings, "runs", "show", "wfrun_missing")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: RUN_NOT_FOUND: run wfrun_missing does not exist\n"


def test_global_options_go_before_or_after_the_command(settings, invoke, tmp_path):
    def placements(group: str, command: str) -> list[list[str]]:
        return [
            ["--data-dir", str(tmp_path / "d0"), group, command, "--json"],
            [group, "--json", command, "--data-dir", str(tmp_path / "d1")],
            ["--json", group, command, f"--data-dir={tmp_path / 'd2'}"],
        ]

    for line in placements("accounts", "list"):
        result = call(settings, *line)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == []
    for i, line in enumerate(placements("config", "show")):
        shown = json.loads(call(settings, *line).stdout)
        assert shown["settings"]["data_dir"]["value"] == str(tmp_path / f"d{i}")


def test_hoist_moves_only_global_options_and_nothing_after_double_dash():
    assert hoist(["serve", "--port", "0", "--data-dir", "/srv", "--json"]) == [
        "--data-dir",
        "/srv",
        "--json",
        "serve",
        "--port",
        "0",
    ]
    assert hoist(["accounts", "create", "--", "--json"]) == ["accounts", "create", "--", "--json"]
    assert hoist(["--data-dir=/a", "db", "upgrade"]) == ["--data-dir=/a", "db", "upgrade"]


def test_admin_commands_refuse_a_database_behind_and_db_upgrade_migrates(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path / "data", seed_demo=False)
    missing = call(settings, "accounts", "list", "--json")
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"]["code"] == "NO_DATABASE"
    assert not (tmp_path / "fresh.db").exists()  # a mistyped location creates nothing
    (tmp_path / "fresh.db").touch()  # an empty SQLite database: behind this wfrun
    behind = call(settings, "accounts", "list")
    assert behind.exit_code == 2
    assert behind.stderr == (
        f"error: DATABASE_NOT_CURRENT: the database is at revision (none), this wfrun needs "
        f"{head_revision()}: run `wfrun db upgrade`\n"
    )
    assert asyncio.run(_recorded(url)) is None  # nothing was migrated
    upgraded = call(settings, "db", "upgrade", "--json")
    assert json.loads(upgraded.stdout) == {"revision": head_revision(), "head": head_revision()}
    assert json.loads(call(settings, "accounts", "list", "--json").stdout) == []


async def _recorded(url: str) -> str | None:
    db = Database(url)
    try:
        return await recorded_revision(db)
    finally:
        await db.dispose()


def test_the_cheap_head_is_alembics_head():
    assert newest_revision() == head_revision()


def test_the_registry_names_every_command_by_its_own_name():
    for entry in COMMANDS:
        command = cli.get_command(click.Context(cli), entry.name)
        assert command is not None
        assert command.name == entry.name


HEAVY = ("fastapi", "uvicorn", "wfrun.api.app", "volcenginesdkarkruntime", "boto3", "alembic")


def _imported_after(code: str) -> list[str]:
    probe = (
        f"import sys\n{code}\n"
        f"print([m for m in {(*HEAVY, 'sqlalchemy', 'pydantic_settings')!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    found: list[str] = json.loads(done.stdout.strip().replace("'", '"'))
    return found


def test_help_imports_no_command_and_no_database():
    code = (
        "from click.testing import CliRunner\nfrom wfrun.cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0"
    )
    assert _imported_after(code) == []


@pytest.mark.parametrize("module", ["accounts", "runs", "workflows", "checks", "instances"])
def test_admin_commands_import_no_server_sdk_or_migrations(module: str):
    found: Any = _imported_after(f"import wfrun.cli.{module}")
    assert [m for m in found if m in HEAVY] == []


def test_a_commands_own_refusal_is_json_under_json(settings, tmp_path):
    not_json = tmp_path / "graph.json"
    not_json.write_text("{not json")
    for args in (["packages", "check"], ["packages", "init"]):
        result = call(settings, *args, str(not_json), "--json")
        assert result.exit_code == 1
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "INVALID_WORKFLOW_PACKAGE"
        assert error["detail"].startswith(f"{not_json} is not JSON: ")


def test_the_database_password_is_masked_whole():
    assert mask_url_password("postgresql://u:p@ss@h:5432/db") == "postgresql://u:********@h:5432/db"
    assert mask_url_password("postgresql://u@h/db") == "postgresql://u@h/db"
