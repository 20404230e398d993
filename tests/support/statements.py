"""Count the database round trips one operation makes, on both dialects.

Wrap one HTTP request (or one worker claim) in :func:`counting`; it listens to SQLAlchemy's
engine and pool events on the runtime's engine and tallies what went to the database::

    async with counting(runtime.db) as trips:
        await http.post("/workflow/run/submit", ...)
    assert trips.round_trips <= 6, trips.explain()

What counts as a round trip (PostgreSQL over asyncpg; SQLite counts the same way, though its
"trips" are in-process calls): each statement SQLAlchemy sends (``before_cursor_execute``; an
``executemany`` is one), each transaction start (``begin``), ``commit`` and ``rollback``, and
for every pool checkout the pre-ping's trips when the engine pre-pings (``pool_pre_ping``
costs 3 on asyncpg: BEGIN, SELECT 1, ROLLBACK). SQLite's hook issues ``BEGIN [IMMEDIATE]`` as
a statement from the ``begin`` event; that is counted once, as the begin.

Only work done by tasks started during the block, and by the task that entered it, is counted:
long-lived background loops (SQLite's stream poller, a worker started before the block) are
left out and tallied in :attr:`Trips.background` instead. uvicorn serves each request in a task
of its own, so a block around one HTTP request counts exactly that request's trips, as long as
no other request is in flight. Warm up first: the first use of a statement on a fresh
connection may add a prepare trip (asyncpg's statement cache), which a steady-state count
should not include.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary, WeakSet

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from wfrun.db.database import Database

PRE_PING_TRIPS = 3
"""Round trips asyncpg's ``pool_pre_ping`` makes per checkout (BEGIN, SELECT 1, ROLLBACK)."""


@dataclass
class Trips:
    """What one block sent to the database (see the module docstring)."""

    statements: list[str] = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0
    pings: int = 0
    """Pre-pings (one per checkout when the engine pre-pings)."""
    background: int = 0
    """Events from tasks that existed before the block (not counted above)."""

    @property
    def round_trips(self) -> int:
        """All round trips: transaction control, statements and pre-pings."""
        control = self.begins + self.commits + self.rollbacks
        return control + len(self.statements) + self.pings * PRE_PING_TRIPS

    @property
    def transactions(self) -> int:
        return self.begins

    def explain(self) -> str:
        """A readable account of the trips, for assertion messages."""
        head = (
            f"{self.round_trips} round trips: {self.begins} begin, {len(self.statements)} "
            f"statements, {self.commits} commit, {self.rollbacks} rollback, "
            f"{self.checkouts} checkouts, {self.pings} pre-pings"
        )
        lines = [head]
        lines += [f"  - {' '.join(sql.split())[:160]}" for sql in self.statements]
        return "\n".join(lines)


def _autocommit(conn: Any) -> bool:
    """A connection without a transaction (``Database.read`` on PostgreSQL): SQLAlchemy still
    reports its begin and commit, but the driver sends neither."""
    return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


def _is_begin(statement: str) -> bool:
    return statement.lstrip().upper().startswith("BEGIN")


class _Listener:
    """The engine and pool listeners that fill one :class:`Trips`."""

    def __init__(self, engine: Engine, trips: Trips) -> None:
        self.engine = engine
        self.trips = trips
        self.older = asyncio.all_tasks() - {asyncio.current_task()}
        self.pre_ping = bool(getattr(engine.pool, "_pre_ping", False))

    def ours(self) -> bool:
        """Whether the event comes from a task this block counts (see the module docstring)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop: a thread of our own (counted)
            return True
        if task in self.older:
            self.trips.background += 1
            return False
        return True

    def statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.ours() and not _is_begin(statement):
            self.trips.statements.append(statement)

    def begin(self, conn: Any) -> None:
        if self.ours() and not _autocommit(conn):
            self.trips.begins += 1

    def commit(self, conn: Any) -> None:
        if self.ours() and not _autocommit(conn):
            self.trips.commits += 1

    def rollback(self, conn: Any) -> None:
        if self.ours() and not _autocommit(conn):
            self.trips.rollbacks += 1

    def checkout(self, *_args: Any) -> None:
        if not self.ours():
            return
        self.trips.checkouts += 1
        if self.pre_ping:
            self.trips.pings += 1

    def hooks(self) -> dict[tuple[str, bool], Any]:
        return {
            ("before_cursor_execute", False): self.statement,
            ("begin", False): self.begin,
            ("commit", False): self.commit,
            ("rollback", False): self.rollback,
            ("checkout", True): self.checkout,
        }


_listening: WeakKeyDictionary[Engine, list[_Listener]] = WeakKeyDictionary()
"""The counting blocks open on each engine."""
_pools: WeakSet[Pool] = WeakSet()
_CONNECTION_EVENTS = ("before_cursor_execute", "begin", "commit", "rollback")


def install() -> None:
    """Listen to every engine's connection events, once per test session, before any engine
    exists (``tests/conftest.py``'s ``pytest_configure``). Adding a listener to an engine
    while one of its events is being dispatched breaks SQLAlchemy's iteration ("deque mutated
    during iteration": SQLite's BEGIN awaits inside the ``begin`` event while another task
    runs), so the dispatchers are class-level and never change; a block only edits its own
    list."""
    for name in _CONNECTION_EVENTS:

        def dispatch(conn: Any, *args: Any, _name: str = name) -> None:
            for listener in [*_listening.get(conn.engine, ())]:
                listener.hooks()[(_name, False)](conn, *args)

        event.listen(Engine, name, dispatch)


def _listen_to_pool(engine: Engine, open_blocks: list[_Listener]) -> None:
    """The pool's ``checkout`` (no listener of it awaits, so adding one is safe)."""
    if engine.pool in _pools:
        return
    _pools.add(engine.pool)

    def checkout(*args: Any) -> None:
        for listener in [*open_blocks]:
            listener.checkout(*args)

    event.listen(engine.pool, "checkout", checkout)


@asynccontextmanager
async def counting(db: Database) -> AsyncIterator[Trips]:
    """Count what ``db``'s engine sends during the block; read the :class:`Trips` after it."""
    trips = Trips()
    engine = db.engine.sync_engine
    open_blocks = _listening.setdefault(engine, [])
    _listen_to_pool(engine, open_blocks)
    listener = _Listener(engine, trips)
    open_blocks.append(listener)
    try:
        yield trips
    finally:
        open_blocks.remove(listener)
