"""``/healthz`` (alive, no database) and ``/readyz`` (database, migrations, storage; 503 naming
the failing part), through real servers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import databases
from tests.support.server import start_server
from wfrun import __version__
from wfrun.config import Settings
from wfrun.db.migrate import head_revision
from wfrun.runtime import Runtime, build_runtime
from wfrun.storage.s3 import S3Config, S3Storage


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def unreachable_url(database_url: str, tmp_path: Path) -> str:
    """The test's dialect, out of reach: SQLite in a directory that does not exist,
    PostgreSQL on a closed port."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'missing' / 'wfrun.db'}"
    return f"postgresql://postgres@127.0.0.1:{closed_port()}/wfrun"


async def _no_follower() -> None:
    """A runtime's ``listen`` that starts nothing: the follower of other processes' changes
    would fail to start on a database that is down, and this test is about the probes."""


@pytest.fixture
async def down(settings: Settings, database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime whose database is down (built without migrating: nothing to connect to)."""
    async with unmigrated_runtime(settings, unreachable_url(database_url, tmp_path)) as rt:
        yield rt


@contextlib.asynccontextmanager
async def unmigrated_runtime(settings: Settings, url: str) -> AsyncIterator[Runtime]:
    """A runtime on ``url`` as it is (not migrated; no follower of other processes)."""
    rt = await build_runtime(settings.model_copy(update={"database_url": url}), migrate=False)
    rt.listen = _no_follower  # type: ignore[method-assign]
    try:
        yield rt
    finally:
        await rt.close()


async def get(base_url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await client.get(path)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["code"] == 1, body
    assert body["msg"] == body["data"]["error"]["reason"]
    error: dict[str, Any] = body["data"]["error"]
    return error


async def test_ready_names_each_part(runtime: Runtime, server):
    answer = await get(server.base_url, "/readyz")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["code"], body["msg"]) == (0, "ready")
    data = body["data"]
    dialect = "sqlite" if runtime.db.is_sqlite else "postgresql"
    assert data == {
        "ready": True,
        "database": {"status": "ok", "detail": f"reachable ({dialect})"},
        "migrations": {"status": "ok", "detail": f"at head {head_revision()}"},
        "storage": {"status": "ok", "detail": "a probe object was written and deleted"},
    }
    health = await get(server.base_url, "/healthz")
    assert health.json() == {"code": 0, "msg": "ok", "data": {"version": __version__}}


async def test_database_down_is_not_ready_but_alive(down: Runtime):
    async with start_server(down) as live:
        alive = await get(live.base_url, "/healthz")
        assert alive.status_code == 200
        assert alive.json()["data"] == {"version": __version__}
        ready = await get(live.base_url, "/readyz")
        metrics = await get(live.base_url, "/metrics")
    assert metrics.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert families["wfrun_metrics_database_up"].samples[0].value == 0
    assert "wfrun_runs" not in families
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == str(down.settings.api.retry_after_seconds)
    error = error_of(ready)
    assert error["reason"] == "Not ready: database, migrations."
    assert (error["engine_code"], error["status_code"]) == ("SERVICE_UNAVAILABLE", 503)
    assert error["detail"].startswith("database failing: the database is unavailable")
    assert error["detail"].endswith("migrations unknown: not checked: the database is failing")
    assert "storage" not in error["detail"]


async def test_unwritable_storage_is_not_ready(runtime: Runtime, server, moto_endpoint_or_none):
    if runtime.db.is_sqlite:  # the configured directory becomes a file: nothing can be written
        root = runtime.settings.resolved_storage_dir
        shutil.rmtree(root)
        root.write_bytes(b"not a directory")
    else:  # S3 (moto) without the bucket
        runtime.storage = S3Storage(
            S3Config(
                bucket="wfrun-no-such-bucket",
                endpoint_url=moto_endpoint_or_none,
                access_key_id="test",
                secret_access_key="test",
            )
        )
    ready = await get(server.base_url, "/readyz")
    assert ready.status_code == 503
    error = error_of(ready)
    assert error["reason"] == "Not ready: storage."
    expected = "FileExistsError: File exists" if runtime.db.is_sqlite else "NoSuchBucket"
    assert error["detail"] == f"storage failing: a probe write failed ({expected})"


@pytest.fixture
def moto_endpoint_or_none(database_url: str, request: pytest.FixtureRequest) -> str | None:
    if database_url.startswith("sqlite"):
        return None
    endpoint: str = request.getfixturevalue("moto_endpoint")
    return endpoint


@pytest.fixture
async def unmigrated(
    settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """A runtime on an empty database of the test's dialect (never migrated)."""
    name = f"wfrun_empty_{os.getpid()}"
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        admin = await asyncpg.connect(databases.PG_ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = databases.pg_url(name)
    try:
        async with unmigrated_runtime(settings, url) as rt:
            yield rt
    finally:
        if not database_url.startswith("sqlite"):
            await databases.drop_pg_database(name)


async def test_schema_behind_the_code_is_not_ready(unmigrated: Runtime):
    async with start_server(unmigrated) as live:
        ready = await get(live.base_url, "/readyz")
        metrics = await get(live.base_url, "/metrics")
    assert ready.status_code == 503
    error = error_of(ready)
    assert error["reason"] == "Not ready: migrations."
    assert error["detail"] == (
        f"migrations failing: the database is at no revision, this code expects "
        f"{head_revision()} (run `wfrun db upgrade`)"
    )
    assert metrics.status_code == 200  # its database values left out, the rest served
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert families["wfrun_metrics_database_up"].samples[0].value == 0
