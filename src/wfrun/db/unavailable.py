"""Which driver and pool errors mean the database is out of reach ("not now", not "wrong"):
``db.database`` raises those as :class:`~wfrun.errors.DatabaseUnavailable`."""

from __future__ import annotations

import errno
import sys

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# PostgreSQL SQLSTATEs (and classes) meaning "not now", not "wrong": connection exceptions,
# insufficient resources (disk full, out of memory, too many connections), operator
# intervention (admin/crash shutdown, cannot connect now), system I/O errors, and a
# read-only transaction (a standby that has not been promoted yet).
_PG_UNAVAILABLE_CLASSES = ("08", "53", "58")
_PG_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "25006"})
# SQLite primary result codes with the same meaning: BUSY, LOCKED, NOMEM, READONLY, IOERR,
# FULL, CANTOPEN, PROTOCOL.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


def unavailable_cause(exc: BaseException) -> str | None:
    """Why ``exc`` (a driver or pool error) means the database is unavailable, or None when it
    means something else. The text names error codes and classes, never an address."""
    if isinstance(exc, PoolTimeout):
        return "no pooled connection became free in time"
    if isinstance(exc, DBAPIError):
        orig = exc.orig or exc
        if exc.connection_invalidated:
            return f"connection lost, {_driver_cause(orig) or f'{type(orig).__name__}: {orig}'}"
        return _driver_cause(orig)
    return _driver_cause(exc)


def asyncpg_errors(*names: str) -> tuple[type[Exception], ...]:
    """asyncpg's exception classes of these names, once asyncpg is loaded (SQLAlchemy imports
    it with the first PostgreSQL connection; until then none of them can be raised, and the
    SQLite-only admin commands never pay for importing it)."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return ()
    return tuple(getattr(asyncpg.exceptions, name) for name in names)


def _driver_cause(exc: BaseException) -> str | None:
    sqlite_code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        name = getattr(exc, "sqlite_errorname", sqlite_code)
        return f"{name}: {exc}" if sqlite_code & 0xFF in _SQLITE_UNAVAILABLE else None
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        unavailable = state[:2] in _PG_UNAVAILABLE_CLASSES or state in _PG_UNAVAILABLE_STATES
        return f"SQLSTATE {state}: {exc}" if unavailable else None
    if isinstance(exc, OSError):  # the message would name the server's address
        code = errno.errorcode.get(exc.errno or 0, "")
        return f"{type(exc).__name__} {code}".strip()
    if isinstance(exc, asyncpg_errors("InterfaceError", "ConnectionDoesNotExistError")):
        return f"{type(exc).__name__}: {exc}"
    return None
