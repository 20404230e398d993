"""Fixtures: every store, API and worker test runs on SQLite and on PostgreSQL.

``runtime`` is a real wfrun runtime on a fresh database; on teardown the ledger invariants
must hold (reliability.md INV-1..8), so every test that moves money is also a books check.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from moto.server import ThreadedMotoServer

pytest.register_assert_rewrite("tests.support.money")  # its asserts explain their failures

from tests.comfyui.standin import ComfyStandin
from tests.support import databases, statements
from tests.support.server import LiveServer, start_server
from wfrun.cli.main import cli
from wfrun.config import Settings, StorageSettings, WorkerSettings
from wfrun.db.audit import ledger_problems, outbox_problems
from wfrun.db.database import Database
from wfrun.runtime import Runtime, build_runtime

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(databases.make_sqlite_template(path))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    databases.require_postgres()
    name = f"wfrun_test_{os.getpid()}"
    asyncio.run(databases.create_pg_database(name))
    yield databases.pg_url(name)
    asyncio.run(databases.drop_pg_database(name))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-protocol server (moto) on loopback, for the S3 storage backend."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()  # port=0: the OS chose it
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated database of each dialect."""
    if request.param == "sqlite":
        return databases.copy_sqlite(sqlite_template, tmp_path / "wfrun.db")
    url: str = request.getfixturevalue("pg_database")
    return url


def make_settings(
    database_url: str, data_dir: Path, *, s3_endpoint: str | None = None, **worker: float
) -> Settings:
    """Test settings; with ``s3_endpoint`` the object store is S3 (a fresh prefix per call)."""
    storage = StorageSettings()
    if s3_endpoint is not None:
        storage = StorageSettings(
            backend="s3",
            s3_bucket="wfrun-test",
            s3_endpoint_url=s3_endpoint,
            s3_prefix=f"t-{uuid.uuid4().hex[:12]}/",
            s3_access_key_id="test",
            s3_secret_access_key="test",
            s3_create_bucket=True,
        )
    return Settings(
        storage=storage,
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret",
        seed_demo=False,
        worker=WorkerSettings(
            concurrency=int(worker.get("concurrency", 4)),
            lease_seconds=worker.get("lease_seconds", 5.0),
            poll_interval=worker.get("poll_interval", 0.05),
            max_attempts=int(worker.get("max_attempts", 3)),
        ),
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Embedded shape on SQLite (local files); scale-out shape on PostgreSQL (S3 storage)."""
    if database_url.startswith("sqlite"):
        return make_settings(database_url, tmp_path / "data")
    endpoint: str = request.getfixturevalue("moto_endpoint")
    return make_settings(database_url, tmp_path / "data", s3_endpoint=endpoint)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = await build_runtime(settings)
    if not rt.db.is_sqlite:
        await databases.truncate_all(rt.db)
    try:
        yield rt
        async with rt.db.transaction() as conn:
            problems = await ledger_problems(conn) + await outbox_problems(conn)
        assert problems == [], "ledger invariants broken:\n" + "\n".join(problems)
    finally:
        await rt.close()


@pytest.fixture
async def server(runtime: Runtime) -> AsyncIterator[LiveServer]:
    """The real app under uvicorn on a loopback port (no embedded worker)."""
    async with start_server(runtime) as live:
        yield live


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.api_url, timeout=30) as client:
        yield client


@pytest.fixture
def invoke(settings: Settings):
    if not settings.resolved_database_url.startswith("sqlite"):
        db = Database(settings.resolved_database_url)

        async def clean() -> None:
            await databases.truncate_all(db)
            await db.dispose()

        asyncio.run(clean())
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(cli, list(args), obj=settings, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return run


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[ComfyStandin]:
    """A ComfyUI stand-in (recorded protocol, real HTTP + WS) on a loopback port."""
    server = ComfyStandin(tmp_path / "comfyui")
    server.launch()
    try:
        yield server
    finally:
        server.shutdown()


def pytest_configure(config: pytest.Config) -> None:
    """Before any engine exists: the round-trip counter's class-level listeners."""
    statements.install()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Prints the step statistics tests recorded (``record_property("ledger state machine",
    {kind: count})``), one section per test."""
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            for name, counts in getattr(report, "user_properties", []):
                if name != "ledger state machine":
                    continue
                terminalreporter.section(f"{name}: steps reached ({report.nodeid})", sep="-")
                for kind, count in counts.items():
                    terminalreporter.write_line(f"{count:6d}  {kind}")
