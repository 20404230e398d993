"""The worker commands when the database is out of reach (issue 10): ``wfrun worker --once``
fails with one line and exit status 1 instead of reporting an empty queue with status 0;
``wfrun worker`` waits for the database (a worker may start before it) and still stops on
SIGTERM, exit 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chaos.harness import Proc


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there now


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("WFRUN_")},
        "WFRUN_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/none",
        "WFRUN_DATA_DIR": str(tmp_path / "data"),
    }


def test_worker_once_fails_clearly_while_the_database_is_unreachable(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "wfrun", "worker", "--once"],
        check=False,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "error: SERVICE_UNAVAILABLE: the database is unavailable" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_worker_waits_for_the_database_and_stops_on_sigterm(tmp_path: Path):
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "wfrun", "worker"],
            env=_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc("worker", popen, log)
    try:
        proc.wait_for("waiting for the database: the database is unavailable")
        proc.signal(signal.SIGTERM)
        assert popen.wait(timeout=60) == 0, proc.output()
        assert "Traceback" not in proc.output()
    finally:
        proc.kill()
