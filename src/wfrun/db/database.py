"""Connections and transactions for SQLite (WAL) and PostgreSQL, behind one interface.

Services own transactions: ``async with db.transaction(write=True) as conn: …``; leaving the
block commits, an exception rolls back. ``write=True`` takes SQLite's write lock up front
(``BEGIN IMMEDIATE``) so read-then-write sequences cannot deadlock; on PostgreSQL writers use
row locks or conditional updates inside ordinary READ COMMITTED transactions.

Driver failures leave as two errors of ours: a constraint refusing a write is
:class:`ConstraintViolated`; the database being out of reach (refused or lost connections,
a server starting or shutting down, too many connections, SQLite busy past its timeout, a full
or unreadable disk) is :class:`~wfrun.errors.DatabaseUnavailable`, which the API answers 503
and workers wait out. Anything else (a bug) propagates unchanged.

PostgreSQL connections are not pre-pinged (that cost three round trips per checkout, issue 17):
the transaction's BEGIN is sent as soon as the connection is checked out, and when it fails
because the connection is dead (a database restart broke it while it sat in the pool) the
connection is invalidated and the checkout and BEGIN are tried once more — nothing of the
caller's has run yet, so the retry is safe. A connection lost after that fails its transaction
as unavailable.

Reads that write nothing use ``async with db.read() as conn: …``: on PostgreSQL its statements
run without a transaction (autocommit), so a read costs its statements' round trips and no
BEGIN/COMMIT. Under READ COMMITTED a transaction gives a sequence of reads nothing more — each
statement sees what was committed when it started either way. A pooled connection whose server
closed it (a restart) is replaced at checkout without a round trip (asyncpg knows its socket
closed); one that fails during the read fails it as unavailable. On SQLite ``read`` is a read
transaction (in process: no round trips to save).

SQLite allows one writer at a time: write transactions (``BEGIN IMMEDIATE``) are serialised in
process by an asyncio lock, so pooled connections queue in order instead of polling each other
through ``busy_timeout`` (p99 2.2 s at 8 clients); the write lock of another process (the
worker, an admin command) is still waited out by ``busy_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import event
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from wfrun.db.unavailable import asyncpg_errors, unavailable_cause
from wfrun.errors import DatabaseUnavailable

_WRITE = "wfrun_write"
_CHANGED = "wfrun_changed_accounts"
_AFTER_COMMIT = "wfrun_after_commit"
log = logging.getLogger(__name__)

Connection: TypeAlias = AsyncConnection
"""An open transaction, as services pass it to ``db/`` and ``queue/`` (which alone speak
SQL); services name this type, never SQLAlchemy's."""


def async_url(url: str) -> str:
    """Map a plain URL to its async driver: sqlite → aiosqlite, postgresql → asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def note_change(conn: Connection, account_id: str) -> None:
    """Remember that this transaction wrote a change or log line of ``account_id``'s runs:
    once it commits, :attr:`Database.commit_hooks` hear of it (in-process wake-ups)."""
    accounts: set[str] = conn.info.setdefault(_CHANGED, set())
    accounts.add(account_id)


def after_commit(conn: Connection, action: Callable[[], None]) -> None:
    """Call ``action`` once this transaction has committed (never after a rollback): the log
    lines that report what it wrote."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(action)


CommitHook = Callable[[frozenset[str]], None]
"""Told, after a commit, the accounts whose runs the transaction changed or logged."""


class ConstraintViolated(Exception):
    """A unique, foreign-key or check constraint refused a write; the transaction was rolled
    back. Callers that race on purpose (first writer wins) catch this, not the driver's."""


class Database:
    """One engine per process; hand out short transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.engine: AsyncEngine = _create_engine(self.url, self.dialect, pool_size)
        self._down_since: float | None = None
        self._writer = asyncio.Lock()
        """SQLite: one write transaction of this process at a time (see the module docstring)."""
        self.commit_hooks: list[CommitHook] = []
        """Called after each commit that :func:`note_change` marked (never after a rollback)."""

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(
        self, *, write: bool = False, foreign_keys: bool = True
    ) -> AsyncIterator[Connection]:
        """A transaction that commits on normal exit and rolls back on an exception.

        ``foreign_keys=False`` (SQLite, migrations only) turns SQLite's foreign-key checks
        off for the transaction; they can only be switched outside one.

        Raises:
            ConstraintViolated: a constraint refused a write (the transaction rolled back).
            DatabaseUnavailable: the database could not be reached, or the connection was
                lost or refused the work for lack of resources (see the module docstring).
        """
        serialised = self._writer if write and self.is_sqlite else _NO_LOCK
        async with serialised, self._connection() as conn:
            conn.info.pop(_CHANGED, None)
            conn.info.pop(_AFTER_COMMIT, None)
            with self._failures("the transaction failed"):
                if write and self.is_sqlite:
                    await conn.execution_options(**{_WRITE: True})
                keys_off = not foreign_keys and self.is_sqlite
                async with _foreign_keys_off(conn, off=keys_off), conn.begin():
                    yield conn
            done = _Committed.of(conn)
        self._committed(done)

    @asynccontextmanager
    async def one_statement(self) -> AsyncIterator[Connection]:
        """A write the caller makes in exactly one statement, atomic by itself: on PostgreSQL
        without BEGIN and COMMIT (autocommit: one round trip instead of three; a worker's
        settlement, issue 11), with :func:`note_change` and :func:`after_commit` heard once
        it succeeded, as after a transaction; on SQLite a write transaction. A second
        statement would commit on its own: callers that may need one use
        :meth:`transaction`.

        Raises:
            ConstraintViolated: a constraint refused the write (nothing was written).
            DatabaseUnavailable: as for :meth:`transaction`.
        """
        if self.is_sqlite:
            async with self.transaction(write=True) as conn:
                yield conn
            return
        conn = await self._checkout()
        try:
            conn.info.pop(_CHANGED, None)
            conn.info.pop(_AFTER_COMMIT, None)
            with self._failures("the statement failed"):
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
            done = _Committed.of(conn)
        finally:
            await conn.close()
        self._committed(done)

    @contextmanager
    def _failures(self, when: str) -> Iterator[None]:
        """A write's driver errors as wfrun's: a refused constraint, the database unavailable."""
        try:
            yield
        except IntegrityError as exc:
            raise ConstraintViolated(str(exc.orig)) from exc
        except DBAPIError as exc:
            unavailable = self._unavailable(exc, when)
            if unavailable is None:
                raise
            raise unavailable from exc

    def _committed(self, done: _Committed) -> None:
        """After a commit: the actions it registered, then the hooks of the accounts it changed."""
        self._available()
        for action in done.actions:
            action()
        if done.changed:
            for hook in self.commit_hooks:
                hook(frozenset(done.changed))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """Reads only: on PostgreSQL without a transaction (no BEGIN/COMMIT round trips), each
        statement seeing what was committed when it ran; on SQLite a read transaction.

        Raises:
            DatabaseUnavailable: the database could not be reached or the connection was lost.
        """
        if self.is_sqlite:
            async with self.transaction() as conn:
                yield conn
            return
        conn = await self._checkout()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
        except DBAPIError as exc:
            unavailable = self._unavailable(exc, "the read failed")
            if unavailable is None:
                raise
            raise unavailable from exc
        finally:
            await conn.close()
        self._available()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, on PostgreSQL with its transaction begun; failing to get one
        is the database being unavailable when the cause says so (a raw socket or
        server-state error from the driver, a pool timeout). A dead pooled connection is
        replaced once (see the module docstring)."""
        conn = await self._checkout()
        if not self.is_sqlite:
            conn = await self._begun(conn)
        try:
            yield conn
        finally:
            await conn.close()

    async def _begun(self, conn: AsyncConnection) -> AsyncConnection:
        """``conn`` with its BEGIN sent; when that fails (whatever the error: nothing of the
        caller's ran) the connection is discarded and a fresh one tried once."""
        try:
            await _begin_now(conn)
            return conn
        except Exception as exc:  # noqa: BLE001 - a pooled connection's failure: replace it
            log.info("replacing a pooled connection that failed to begin (%s)", exc)
            await conn.invalidate()
            await conn.close()
        except BaseException:  # cancelled with the BEGIN unanswered: give the connection back
            await conn.invalidate()
            await conn.close()
            raise
        conn = await self._checkout()
        try:
            await _begin_now(conn)
        except BaseException as exc:
            await conn.invalidate()
            await conn.close()
            if not isinstance(exc, Exception):
                raise
            unavailable = self._unavailable(exc.__cause__ or exc, "cannot begin")  # type: ignore[arg-type]
            if unavailable is None:
                raise
            raise unavailable from exc
        return conn

    async def _checkout(self) -> AsyncConnection:
        conn = self.engine.connect()
        failures: tuple[type[Exception], ...] = (OSError, PoolTimeout, DBAPIError)
        failures += asyncpg_errors("PostgresError")
        try:
            await conn.start()
        except failures as exc:
            unavailable = self._unavailable(exc, "cannot connect")
            if unavailable is None:
                raise
            raise unavailable from exc
        return conn

    def _unavailable(self, exc: Exception, when: str) -> DatabaseUnavailable | None:
        """The DatabaseUnavailable ``exc`` means, or None when it means something else."""
        cause = unavailable_cause(exc)
        if cause is None:
            return None
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("%s database unavailable (%s: %s)", self.dialect, when, cause)
        return DatabaseUnavailable(f"the database is unavailable ({when}: {cause}); retry later")

    def _available(self) -> None:
        if self._down_since is not None:
            down = time.monotonic() - self._down_since
            self._down_since = None
            log.warning("%s database available again after %.1f s", self.dialect, down)

    async def dispose(self) -> None:
        await self.engine.dispose()


@dataclass(frozen=True, slots=True)
class _Committed:
    """What a committed write registered (:func:`note_change`, :func:`after_commit`)."""

    changed: set[str] | None
    actions: list[Callable[[], None]]

    @classmethod
    def of(cls, conn: AsyncConnection) -> _Committed:
        return cls(conn.info.pop(_CHANGED, None), conn.info.pop(_AFTER_COMMIT, []))


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


async def _begin_now(conn: AsyncConnection) -> None:
    """PostgreSQL: send the BEGIN now (asyncpg's adapter would send it with the first
    statement; this calls its hook early) so a dead connection shows before any statement of
    the caller's ran."""
    raw = await conn.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    if getattr(adapter, "_transaction", None) is None:
        await adapter._start_transaction()


def _create_engine(url: str, dialect: str, pool_size: int) -> AsyncEngine:
    if dialect == "sqlite":
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)
        _install_sqlite_hooks(engine)
        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine.sync_engine, "checkout", _replace_closed)
    return engine


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """PostgreSQL checkout: a pooled connection whose socket the server closed (a restart) is
    replaced by the pool at once, with no round trip (SQLAlchemy's DisconnectionError)."""
    raw = getattr(dbapi_connection, "_connection", None)
    if raw is not None and raw.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """WAL, foreign keys, busy timeout; and our own BEGIN so BEGIN IMMEDIATE is possible."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@asynccontextmanager
async def _foreign_keys_off(conn: AsyncConnection, *, off: bool) -> AsyncIterator[None]:
    """SQLite only: foreign-key checks off around a transaction (migrations)."""
    if not off:
        yield
        return
    await conn.run_sync(_sqlite_foreign_keys, False)
    try:
        yield
    finally:
        await conn.run_sync(_sqlite_foreign_keys, True)


def _sqlite_foreign_keys(connection: SyncConnection, enabled: bool) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    cursor.close()
