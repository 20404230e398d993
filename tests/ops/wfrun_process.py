"""``python -m wfrun …`` as an operator runs it: a clean ``WFRUN_*`` environment, a working
directory of the test's own, and its stdout, stderr and exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.chaos.harness import Proc


def environment(**settings: str) -> dict[str, str]:
    """The test process's environment without any ``WFRUN_*`` variable, plus ``settings``."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("WFRUN_")}
    return base | settings


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``wfrun ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "wfrun", *args],
        cwd=cwd,
        env=environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """Its stderr as lines (a refused start-up has exactly one)."""
    return done.stderr.splitlines()


def serve_banner(cwd: Path, *args: str, env: dict[str, str]) -> str:
    """Start ``wfrun serve --port 0 ARGS``, wait until it serves, stop it (SIGTERM) and return
    its standard output: the banner, whole."""
    out, log = cwd / "serve.out", cwd / "serve.log"
    with out.open("wb") as stdout, log.open("wb") as stderr:
        popen = subprocess.Popen(
            [sys.executable, "-m", "wfrun", "serve", "--port", "0", *args],
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    proc = Proc("serve", popen, log)
    try:
        proc.wait_for(r"Uvicorn running on|Application startup complete")
        proc.signal(signal.SIGTERM)
        assert popen.wait(timeout=60) == 0, proc.output()
    finally:
        proc.kill()
    return out.read_text()
