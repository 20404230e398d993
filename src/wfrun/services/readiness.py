"""``/readyz``: whether this process can serve — the database answers, its schema is at the
migration head this code expects, and storage takes a write. Each part is checked under a
short time limit; nothing is changed (the storage probe deletes what it wrote)."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from wfrun.db.database import Database
from wfrun.db.migrate import current_revision, head_revision
from wfrun.errors import DatabaseUnavailable
from wfrun.storage.base import ObjectStore

log = logging.getLogger(__name__)
PROBE_PREFIX = "readyz-probe"


class State(StrEnum):
    OK = "ok"
    FAILING = "failing"
    UNKNOWN = "unknown"
    """Not checked: what it depends on is failing (migrations while the database is down)."""


@dataclass(frozen=True)
class Part:
    name: str
    state: State
    detail: str


@dataclass(frozen=True)
class Readiness:
    parts: tuple[Part, ...]

    @property
    def ready(self) -> bool:
        return all(part.state is State.OK for part in self.parts)

    @property
    def failing(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if part.state is not State.OK)


@functools.cache
def _head() -> str | None:
    """The migration head of this code (read once per process from the scripts)."""
    return head_revision()


async def check(db: Database, storage: ObjectStore, *, timeout: float) -> Readiness:
    """Every part, checked concurrently, each within ``timeout`` seconds."""
    (database, migrations), stored = await asyncio.gather(
        _database(db, timeout), _storage(storage, timeout)
    )
    return Readiness((database, migrations, stored))


async def _database(db: Database, timeout: float) -> tuple[Part, Part]:
    try:
        async with asyncio.timeout(timeout):
            current = await current_revision(db)
    except DatabaseUnavailable as exc:
        failing = Part("database", State.FAILING, exc.detail)
    except TimeoutError:
        failing = Part("database", State.FAILING, f"no answer within {timeout:g} s")
    else:
        database = Part("database", State.OK, f"reachable ({db.dialect})")
        return database, _migrations(current, _head())
    return failing, Part("migrations", State.UNKNOWN, "not checked: the database is failing")


def _migrations(current: str | None, head: str | None) -> Part:
    if current == head:
        return Part("migrations", State.OK, f"at head {head}")
    detail = f"the database is at {current or 'no revision'}, this code expects {head}"
    return Part("migrations", State.FAILING, detail + " (run `wfrun db upgrade`)")


async def _storage(storage: ObjectStore, timeout: float) -> Part:
    key = f"{PROBE_PREFIX}-{uuid.uuid4().hex}"  # top level: no directory is left behind
    try:
        async with asyncio.timeout(timeout):
            await storage.put(key, b"ready", content_type="text/plain")
            await storage.delete(key)
    except TimeoutError:
        return Part("storage", State.FAILING, f"no answer within {timeout:g} s")
    except Exception as exc:  # noqa: BLE001 (any backend's refusal: OSError, botocore, …)
        log.warning("readiness: storage probe failed: %s: %s", type(exc).__name__, exc)
        return Part("storage", State.FAILING, f"a probe write failed ({_why(exc)})")
    return Part("storage", State.OK, "a probe object was written and deleted")


def _why(exc: Exception) -> str:
    """The error's class and, for an OS error, its text without the path."""
    name = type(exc).__name__
    return f"{name}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else name
