"""A look at a database URL before a process starts on it, creating nothing.

``wfrun serve`` and ``wfrun worker`` probe first so that a wrong URL is one line saying what,
where and what to do (``createdb …``, start PostgreSQL, fix the user) instead of a traceback
after the data directory was made. SQLite is not opened (that would create the file); the CLI
checks its directory instead (:func:`sqlite_file`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from wfrun.db.database import async_url

_TRANSIENT_STATES = ("08", "53", "57P03")  # connection, resources, "starting up"
_FIX_URL = "correct the database URL (WFRUN_DATABASE_URL or database_url)"


@dataclass(frozen=True, slots=True)
class Verdict:
    problem: str | None = None
    """One line (what, where, what to do); None when the database answered."""
    transient: bool = False
    """The server is down or starting (it may come): a worker may wait for it. Otherwise
    the URL itself is wrong (no such database, host or user)."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


async def probe(url: str, *, timeout: float = 10.0) -> Verdict:
    """Connect to a PostgreSQL URL once and run ``SELECT 1``; SQLite is not touched."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        return Verdict()
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    engine = create_async_engine(parsed, poolclass=NullPool)
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return Verdict(
            f"PostgreSQL at {where} did not answer within {timeout:g} s; "
            f"check that it runs there or {_FIX_URL}",
            transient=True,
        )
    except socket.gaierror as exc:
        return Verdict(
            f"cannot resolve the database host {parsed.host!r} ({exc.strerror}); {_FIX_URL}"
        )
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        return Verdict(
            f"PostgreSQL at {where} is not reachable ({reason}); start it or {_FIX_URL}",
            transient=True,
        )
    except DBAPIError as exc:
        return _refused(exc, parsed, where)
    finally:
        await engine.dispose()
    return Verdict()


def _refused(exc: DBAPIError, url: URL, where: str) -> Verdict:
    """PostgreSQL answered but refused the connection: say why and how to fix it."""
    state = str(getattr(exc.orig, "sqlstate", "") or "")
    reason = str(exc.orig).strip() or type(exc.orig).__name__
    if state == "3D000":
        user = f" -U {url.username}" if url.username else ""
        create = f"createdb -h {url.host or 'localhost'} -p {url.port or 5432}{user} {url.database}"
        return Verdict(
            f'PostgreSQL database "{url.database}" does not exist on {where}; '
            f"create it with `{create}` or {_FIX_URL}"
        )
    if state.startswith("28"):
        return Verdict(
            f"PostgreSQL at {where} refused user {url.username!r} ({reason}); "
            f"check the user and password in the database URL"
        )
    transient = state.startswith(_TRANSIENT_STATES)
    return Verdict(
        f"PostgreSQL at {where} refused the connection ({reason}); "
        + ("retry when it is up" if transient else _FIX_URL),
        transient=transient,
    )
