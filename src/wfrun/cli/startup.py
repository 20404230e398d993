"""Start-up checks of ``wfrun serve`` and ``wfrun worker``, before anything is created.

Every configuration mistake is one line on stderr (``error: <what, where, what to do>``) and
exit status 2, found before the data directory, the SQLite file, the secret key or the demo
exist: a directory that cannot be written, a port in use (the socket is bound first), a
PostgreSQL URL whose server is down or whose database is missing (:mod:`wfrun.db.probe`).
Settings errors (unknown names, bad values) were refused when the settings were loaded.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from wfrun.cli.sockets import listen_tcp
from wfrun.config import Settings
from wfrun.db.probe import Verdict, probe, sqlite_file
from wfrun.errors import ConfigError


def check_paths(settings: Settings) -> None:
    """The data directory (and a storage directory or SQLite file elsewhere) can be made and
    written by this process; nothing is created."""
    source = _named(settings, "data_dir", "--data-dir or WFRUN_DATA_DIR")
    writable_dir(settings.data_dir, "data directory", source)
    if settings.storage.backend == "local" and settings.storage_dir is not None:
        storage = _named(settings, "storage_dir", "WFRUN_STORAGE_DIR")
        writable_dir(settings.storage_dir, "storage directory", storage)
    database = sqlite_file(settings.resolved_database_url)
    if database is not None and not database.resolve().is_relative_to(settings.data_dir.resolve()):
        url = _named(settings, "database_url", "WFRUN_DATABASE_URL")
        writable_dir(database.parent, "SQLite directory", url, create=False)


def writable_dir(path: Path, what: str, fix: str, *, create: bool = True) -> None:
    """Refuse a directory that is not one, or that this process could not make or write.

    Args:
        path: The directory.
        what: Its role, for the message ("data directory").
        fix: Where it is set, for the message ("--data-dir or WFRUN_DATA_DIR").
        create: Whether the process would create it (else it must exist).
    """
    path = path.absolute()
    nearest = path
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if nearest != path and not create:
        fail_with = f"{what} {path} does not exist; create it or choose another with {fix}"
        raise ConfigError(fail_with)
    if not nearest.is_dir():
        blocker = "is a file" if nearest == path else f"cannot be created: {nearest} is a file"
        raise ConfigError(f"{what} {path} {blocker}, not a directory; choose another with {fix}")
    if not os.access(nearest, os.W_OK | os.X_OK):
        where = "" if nearest == path else f" ({nearest} is not writable)"
        raise ConfigError(
            f"{what} {path} is not writable by this user{where}; "
            f"fix its permissions or choose another with {fix}"
        )


def listen(settings: Settings) -> socket.socket:
    """The API's listening socket, bound before anything else happens."""
    in_use = (
        "another process listens there (another wfrun serve?); stop it or choose another port "
        "with --port or WFRUN_PORT"
    )
    other = "choose another address with --host/--port or WFRUN_HOST/WFRUN_PORT"
    return _bound(settings.host, settings.port, in_use, other)


def check_metrics_port(host: str, port: int | None) -> None:
    """A separate metrics port (``WFRUN_METRICS__PORT``, ``worker --metrics-port``) is free:
    bound and let go at once, before anything is created."""
    if port:
        options = "--metrics-port or WFRUN_METRICS__PORT/WFRUN_METRICS__HOST"
        in_use = f"another process listens there; stop it or choose another with {options}"
        _bound(host, port, in_use, f"choose another address with {options}").close()


def _bound(host: str, port: int, in_use: str, other: str) -> socket.socket:
    try:
        return listen_tcp(host, port)
    except (OSError, OverflowError) as exc:  # OverflowError: a port beyond 65535
        reason = getattr(exc, "strerror", None) or str(exc)
        hint = in_use if getattr(exc, "errno", None) == errno.EADDRINUSE else other
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}; {hint}") from None


async def check_database(settings: Settings, *, wait_if_down: bool = False) -> Verdict:
    """Refuse a database URL that is wrong; a server that is down is refused too, unless
    ``wait_if_down`` (a long-running worker waits for its database): then the verdict says so.
    """
    verdict = await probe(settings.resolved_database_url)
    if verdict.problem is not None and not (wait_if_down and verdict.transient):
        raise ConfigError(verdict.problem)
    return verdict


def _named(settings: Settings, path: str, default: str) -> str:
    """How the operator set ``path``: its source when not a default, else ``default``."""
    origin = settings.sources.origin(path)
    return default if origin == "default" else f"{default} (now from {origin})"
