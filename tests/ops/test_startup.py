"""Start-up failures of ``wfrun serve`` and ``wfrun worker`` (issue 14 item 4): each mistake is
exactly one line on stderr and exit status 2, found before anything is created (the data
directory does not exist afterwards); and the demo data only where it belongs (item 5)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from tests.ops.wfrun_process import environment, error_lines, run, serve_banner
from tests.support import databases
from wfrun.db import accounts as accounts_db
from wfrun.db.database import Database
from wfrun.services.model_runs import SYSTEM_ACCOUNT

PG = databases.PG_ADMIN_DSN.rsplit("/", 1)[0]  # postgresql://postgres@127.0.0.1:5432
FIX_URL = "correct the database URL (WFRUN_DATABASE_URL or database_url)"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there now


def refused(tmp_path: Path, command: str, expected: str, **settings: str) -> None:
    """``wfrun COMMAND`` with ``settings`` fails with exactly ``error: expected``, exit 2,
    leaving the data directory uncreated."""
    data = tmp_path / "data"
    env = environment(WFRUN_DATA_DIR=str(data), **settings)
    done = run(tmp_path, *command.split(), env=env)
    assert (done.returncode, error_lines(done)) == (2, [f"error: {expected}"]), done.stderr
    assert done.stdout == ""
    assert not data.exists()


@pytest.mark.parametrize("command", ["serve", "worker", "worker --once", "accounts list"])
def test_database_that_does_not_exist(tmp_path: Path, command: str):
    host = "127.0.0.1:5432"
    expected = (
        f'PostgreSQL database "wfrun_missing" does not exist on {host}; create it with '
        f"`createdb -h 127.0.0.1 -p 5432 -U postgres wfrun_missing` or {FIX_URL}"
    )
    databases.require_postgres()
    refused(tmp_path, command, expected, WFRUN_DATABASE_URL=f"{PG}/wfrun_missing")


def test_serve_with_postgresql_down(tmp_path: Path):
    port = closed_port()
    expected = (
        f"PostgreSQL at 127.0.0.1:{port} is not reachable (connection refused); start it or "
        + FIX_URL
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/wfrun"
    refused(tmp_path, "serve", expected, WFRUN_DATABASE_URL=url)


def test_serve_on_a_port_in_use(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        expected = (
            f"cannot listen on 127.0.0.1:{port}: Address already in use; another process "
            "listens there (another wfrun serve?); stop it or choose another port with --port "
            "or WFRUN_PORT"
        )
        refused(tmp_path, f"serve --port {port}", expected)


def test_serve_on_a_port_that_cannot_be(tmp_path: Path):
    expected = (
        "cannot listen on 127.0.0.1:70000: bind(): port must be 0-65535.; choose another "
        "address with --host/--port or WFRUN_HOST/WFRUN_PORT"
    )
    refused(tmp_path, "serve --port 70000", expected)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_unknown_database_scheme(tmp_path: Path, command: str):
    expected = (
        "invalid setting WFRUN_DATABASE_URL: unknown database scheme 'mysql'; "
        "expected sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
    )
    url = "mysql://root:hunter2@127.0.0.1/wfrun"
    refused(tmp_path, command, expected, WFRUN_DATABASE_URL=url)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_data_dir_that_cannot_be_created(tmp_path: Path, command: str):
    (tmp_path / "taken").write_text("a file, not a directory")
    data = tmp_path / "taken" / "data"
    expected = (
        f"data directory {data} cannot be created: {tmp_path / 'taken'} is a file, not a "
        "directory; choose another with --data-dir or WFRUN_DATA_DIR (now from env "
        "WFRUN_DATA_DIR)"
    )
    done = run(tmp_path, *command.split(), env=environment(WFRUN_DATA_DIR=str(data)))
    assert (done.returncode, error_lines(done)) == (2, [f"error: {expected}"]), done.stderr
    assert (tmp_path / "taken").read_text() == "a file, not a directory"


def test_serve_data_dir_that_is_a_file(tmp_path: Path):
    (tmp_path / "data").write_text("x")
    expected = (
        f"data directory {tmp_path / 'data'} is a file, not a directory; choose another with "
        "--data-dir or WFRUN_DATA_DIR (now from command line)"
    )
    done = run(tmp_path, "serve", "--data-dir", "data")
    assert (done.returncode, error_lines(done)) == (2, [f"error: {expected}"]), done.stderr
    assert not (tmp_path / ".wfrun").exists()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"WFRUN_PORT": "abc"},
            (
                "invalid setting WFRUN_PORT: Input should be a valid integer, unable to parse "
                "string as an integer (got 'abc')"
            ),
        ),
        (
            {"WFRUN_WORKER__CONCURENCY": "8"},
            "unknown setting WFRUN_WORKER__CONCURENCY (did you mean WFRUN_WORKER__CONCURRENCY?)",
        ),
        (
            {"WFRUN_CONFIG": "missing.toml"},
            "config file missing.toml (WFRUN_CONFIG) does not exist; fix it or unset WFRUN_CONFIG",
        ),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker", "accounts list"])
def test_bad_settings(tmp_path: Path, command: str, settings: dict[str, str], expected: str):
    refused(tmp_path, command, expected, **settings)


@pytest.mark.parametrize("command", ["serve", "worker --once"])
def test_bad_toml(tmp_path: Path, command: str):
    (tmp_path / "wfrun.toml").write_text('host = "0.0.0.0"\n[worker]\nconcurrency = \n')
    expected = "wfrun.toml:3:15: invalid TOML: Invalid value; fix it or unset WFRUN_CONFIG"
    refused(tmp_path, command, expected, WFRUN_CONFIG="wfrun.toml")


def test_unknown_toml_key(tmp_path: Path):
    (tmp_path / "wfrun.toml").write_text("[webhooks]\ntimeout_secs = 5\n")
    expected = (
        "unknown setting webhooks.timeout_secs in wfrun.toml "
        "(did you mean webhooks.timeout_seconds?)"
    )
    refused(tmp_path, "serve", expected, WFRUN_CONFIG="wfrun.toml")


async def _accounts(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.transaction() as conn:
            found = await accounts_db.list_accounts(conn)
    finally:
        await db.dispose()
    return [a.display_name for a in found if a.id != SYSTEM_ACCOUNT]


async def _empty(url: str) -> None:
    db = Database(url)
    try:
        await databases.truncate_all(db)
    finally:
        await db.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_gets_no_demo_unless_asked(database_url: str, tmp_path: Path):
    asyncio.run(_empty(database_url))
    env = environment(WFRUN_DATABASE_URL=database_url, WFRUN_DATA_DIR=str(tmp_path / "data"))
    banner = serve_banner(tmp_path, env=env)
    assert len(banner.splitlines()) == 2, banner  # served, docs: no demo key
    assert not (tmp_path / "data" / "demo_api_key").exists()
    assert asyncio.run(_accounts(database_url)) == []

    banner = serve_banner(tmp_path, "--demo", env=env)
    key = (tmp_path / "data" / "demo_api_key").read_text().strip()
    assert banner.splitlines()[2:] == [
        f"demo API key (also kept in {tmp_path / 'data' / 'demo_api_key'}):",
        key,
    ]
    assert asyncio.run(_accounts(database_url)) == ["wfrun demo operator", "demo user"]


@pytest.mark.slow
def test_sqlite_gets_the_demo_and_its_key_is_printed_once(tmp_path: Path):
    env = environment()
    first = serve_banner(tmp_path, env=env).splitlines()
    key = (tmp_path / ".wfrun" / "demo_api_key").read_text().strip()
    assert first[2:] == ["demo API key (also kept in .wfrun/demo_api_key):", key]
    assert key.startswith("wfk_")
    second = serve_banner(tmp_path, env=env).splitlines()
    assert second[2:] == ["demo API key: kept in .wfrun/demo_api_key"]
    assert key not in "\n".join(second)


@pytest.mark.slow
def test_the_banner_is_one_json_object_under_json(tmp_path: Path):
    env = environment()
    first = json.loads(serve_banner(tmp_path, "--json", env=env))
    key_file = ".wfrun/demo_api_key"
    assert first["demo_api_key"] == (tmp_path / key_file).read_text().strip()
    assert first["demo_api_key_file"] == key_file
    assert first["database"] == "sqlite"
    assert first["url"].endswith("/api/open/v2")
    second = json.loads(serve_banner(tmp_path, "--json", env=env))
    assert (second["demo_api_key"], second["demo_api_key_file"]) == (None, key_file)


@pytest.mark.slow
def test_no_demo_on_sqlite(tmp_path: Path):
    banner = serve_banner(tmp_path, "--no-demo", env=environment())
    assert len(banner.splitlines()) == 2, banner
    assert not (tmp_path / ".wfrun" / "demo_api_key").exists()
    assert asyncio.run(_accounts(f"sqlite:///{tmp_path / '.wfrun' / 'wfrun.db'}")) == []


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_metrics_port_in_use(tmp_path: Path, command: str):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        expected = (
            f"cannot listen on 127.0.0.1:{port}: Address already in use; another process "
            "listens there; stop it or choose another with --metrics-port or "
            "WFRUN_METRICS__PORT/WFRUN_METRICS__HOST"
        )
        if command == "serve":
            refused(tmp_path, "serve --port 0", expected, WFRUN_METRICS__PORT=str(port))
        else:
            refused(tmp_path, f"worker --metrics-port {port}", expected)
