"""The database out of reach is ``DatabaseUnavailable`` (HTTP 503), never a 500; a bug in SQL
is not mistaken for an outage; connections a restart broke do not poison the pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from tests.chaos.support import pragmas, write_locked, write_locked_from_a_thread
from tests.fetch.support import free_port
from tests.support.factories import customer, data_uri, operator, png_bytes, publish_demo
from tests.support.pg_relay import Relay
from tests.support.server import start_server
from tests.support.waiting import until_true
from wfrun.db.database import Database
from wfrun.errors import DatabaseUnavailable
from wfrun.runtime import Runtime


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    async with db.transaction(write=True) as conn:
        await conn.execute(text("CREATE TABLE t (x BLOB)"))
    yield db
    await db.dispose()


async def _insert(db: Database, rows: int = 1) -> None:
    async with db.transaction(write=True) as conn:
        for _ in range(rows):
            await conn.execute(text("INSERT INTO t VALUES (randomblob(4000))"))


async def test_sqlite_locked_past_its_busy_timeout_is_unavailable(sqlite_db, tmp_path):
    locked = pytest.raises(DatabaseUnavailable, match="SQLITE_BUSY: database is locked")
    async with pragmas(sqlite_db, "PRAGMA busy_timeout=50"):
        with write_locked(tmp_path / "x.db"), locked:
            await _insert(sqlite_db)
    await _insert(sqlite_db)  # the lock is gone: it writes again


async def test_sqlite_disk_full_is_unavailable_and_rolled_back(sqlite_db):
    full = pytest.raises(DatabaseUnavailable, match="SQLITE_FULL")
    async with pragmas(sqlite_db, "PRAGMA max_page_count=16"):
        with full as caught:
            await _insert(sqlite_db, rows=64)
    assert caught.value.code == "SERVICE_UNAVAILABLE"
    async with sqlite_db.transaction() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path):
    before = set(threading.enumerate())
    db = Database(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
    try:
        with pytest.raises(DatabaseUnavailable, match="cannot connect: SQLITE_CANTOPEN"):
            await _insert(db)
    finally:
        await db.dispose()
    # aiosqlite finishes a failed connect on its thread after the await returned: let it, or
    # it reports to this test's closed event loop during the next test.
    await until_true(
        lambda: (
            not any(
                "_connection_worker_thread" in t.name for t in set(threading.enumerate()) - before
            )
        ),
        what="aiosqlite's connection thread to finish",
    )


async def test_postgresql_refusing_connections_is_unavailable_without_its_address():
    port = free_port("127.0.0.1")
    db = Database(f"postgresql://postgres@127.0.0.1:{port}/wfrun")
    try:
        with pytest.raises(DatabaseUnavailable, match="ConnectionRefusedError") as caught:
            await _backend_pid(db)
    finally:
        await db.dispose()
    assert "cannot connect" in caught.value.detail
    assert str(port) not in caught.value.detail


async def test_a_bug_in_sql_is_not_an_outage(database_url: str):
    db = Database(database_url)
    try:
        with pytest.raises((OperationalError, ProgrammingError)):
            async with db.transaction() as conn:
                await conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        await db.dispose()


async def _terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def _backend_pid(db: Database) -> int:
    async with db.transaction() as conn:
        pid: int = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


async def _lose_connection_mid_transaction(
    db: Database, lost: list[int], *, read: bool = False
) -> None:
    async with db.read() if read else db.transaction() as conn:
        lost.append((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await _terminate(db.url, lost[-1])
        await conn.execute(text("SELECT 1"))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_connections_broken_by_a_restart_do_not_poison_the_pool(database_url):
    """A terminated backend looks like a restart to the pool: an idle connection is replaced
    when its BEGIN fails (no pre-ping); one lost mid-transaction fails that transaction only, as
    unavailable, and the next one gets a fresh connection."""
    db = Database(database_url, pool_size=1)
    try:
        idle = await _backend_pid(db)
        await _terminate(db.url, idle)
        assert await _backend_pid(db) != idle  # replaced at BEGIN; no error surfaced
        lost: list[int] = []
        with pytest.raises(DatabaseUnavailable, match="connection lost"):
            await _lose_connection_mid_transaction(db, lost)
        assert await _backend_pid(db) not in lost
    finally:
        await db.dispose()


async def _read_pid(db: Database) -> tuple[int, Any]:
    """The backend's pid and the driver's (asyncpg's) connection a read ran on."""
    async with db.read() as conn:
        pid: int = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        adapter: Any = (await conn.get_raw_connection()).dbapi_connection
    return pid, adapter._connection


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_reads_replace_connections_a_restart_closed(database_url):
    """A read has no BEGIN to find a dead connection with: one the server closed while it sat
    in the pool is replaced at checkout (no error surfaced, no round trip); one lost during the
    read fails it as unavailable, and the next read gets a fresh connection."""
    db = Database(database_url, pool_size=1)
    try:
        idle, driver = await _read_pid(db)
        await _terminate(db.url, idle)
        await until_true(driver.is_closed, what="the driver to see its socket closed")
        assert (await _read_pid(db))[0] != idle  # replaced at checkout
        lost: list[int] = []
        with pytest.raises(DatabaseUnavailable, match="connection lost"):
            await _lose_connection_mid_transaction(db, lost, read=True)
        assert (await _read_pid(db))[0] not in lost
    finally:
        await db.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_api_answers_503_in_the_envelope_while_the_database_is_locked(
    runtime: Runtime, database_url: str
):
    """Through the HTTP API: a submit that cannot get the write lock is a 503
    SERVICE_UNAVAILABLE (not a 500); reads still work; the same submit succeeds once the lock
    is gone, as a first submit (the 503 changed nothing)."""
    workflow_id = (await publish_demo(runtime, await operator(runtime))).workflow_id
    alice = await customer(runtime, balance="1")
    inputs = {"n1_image": data_uri(png_bytes(8, 8)), "n2_width": 16}
    body = {"workflow_id": workflow_id, "idempotency_key": "locked", "inputs": inputs}
    path = Path(database_url.removeprefix("sqlite:///"))
    # ``pragmas`` empties the pool, so nothing may hold a connection meanwhile; the API's
    # follower of other processes' run changes polls SQLite every 25 ms and would: this test
    # is about a submit under a lock, not about live events, so the server runs without it
    runtime.listen = _no_follower  # type: ignore[method-assign]
    runtime.rates.run = _no_limits_sync  # type: ignore[method-assign] # it reads the database too
    async with (
        start_server(runtime) as live,
        httpx.AsyncClient(base_url=live.api_url, headers=alice.headers, timeout=30) as http,
    ):
        async with (
            pragmas(runtime.db, "PRAGMA busy_timeout=50"),
            write_locked_from_a_thread(path),
        ):
            refused = await http.post("/workflow/run/submit", json=body)
            balance = await http.get("/balance/info")
        accepted = await http.post("/workflow/run/submit", json=body)
    assert refused.status_code == 503, refused.text
    error = refused.json()["data"]["error"]
    assert (error["engine_code"], error["status_code"]) == ("SERVICE_UNAVAILABLE", 503)
    assert "SQLITE_BUSY" in error["detail"]
    assert refused.headers.get("Retry-After", "1").isdigit()  # added by api/errors.py
    assert balance.status_code == 200
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"]["idempotent_replay"] is False


async def _no_follower() -> None:
    """A runtime's ``listen`` that starts nothing."""


async def _no_limits_sync(db: Database, stop: asyncio.Event) -> None:
    """The rate limiter's ``run`` (its per-process exchange and override reload) doing
    nothing."""


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_transaction_cancelled_while_its_begin_is_unanswered_gives_its_connection_back(
    database_url,
):
    """A request cancelled (a timeout, a disconnect, a shutdown) while the BEGIN sent at
    checkout has no answer yet leaves no connection checked out of the pool."""
    relay = Relay(database_url)
    db = Database(await relay.start())
    try:
        await _backend_pid(db)  # one pooled connection
        relay.hold = lambda sent: True
        begun = asyncio.create_task(_backend_pid(db))
        await until_true(lambda: relay.held, what="the BEGIN to be held")
        begun.cancel()
        with pytest.raises(asyncio.CancelledError):
            await begun
        relay.release()
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        await _backend_pid(db)  # and the pool serves again
    finally:
        await db.dispose()
        await relay.stop()
