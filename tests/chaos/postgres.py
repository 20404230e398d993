"""A throwaway PostgreSQL server the test starts itself (initdb into a temporary directory,
a free loopback port), so it can be stopped and started again under a running wfrun."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.fetch.support import free_port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class ThrowawayPostgres:
    """``initdb`` + ``pg_ctl`` as the ``postgres`` user (when run as root), trust auth,
    listening on 127.0.0.1 only."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="wfrun-chaos-pg-"))
        self.port = free_port("127.0.0.1")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{tool} failed:\n{done.stdout}\n{done.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        pid_file = self.dir / "data" / "postmaster.pid"
        if pid_file.exists():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def throwaway_postgres() -> ThrowawayPostgres:
    """A new, started server; skips (or fails in CI) without PostgreSQL's binaries."""
    bin_dir = _binaries()
    if bin_dir is None:
        message = "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = ThrowawayPostgres(bin_dir)
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
