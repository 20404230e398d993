"""The benchmark suite still runs end to end: ``python -m benchmarks --smoke`` (tiny counts, both
databases, no thresholds) in its own process, and its table has every row with a value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = [
    "submit c=1 (rps)",
    "submit c=1 p50 / p99",
    "submit c=8 (rps)",
    "submit c=8 p50 / p99",
    "submit c=32 (rps)",
    "submit c=32 p50 / p99",
    "replay c=8 (rps)",
    "balance/info c=8 (rps)",
    "balance/info vs its queries",
    "run/execution finished c=8 (rps)",
    "run/execution finished vs its queries",
    "run/list p99 at 100 runs",
    "queued run/execution p99 at 100 runs",
    "dispatch p50 idle (submit sent → running)",
    "dispatch p99 idle (submit sent → running)",
    "dispatch p50 / p99 under 10 submits/s",
    "end-to-end p50 trivial graph",
    "event stream p50 / p99",
    "worker drain, 1 process (runs/s)",
    "worker drain incl. its start-up (runs/s)",
    "worker CPU per drained run",
    "runs in flight at --concurrency 64 (max)",
    "server RSS across N submits",
    "server CPU per submit",
    "load generator CPU (max cores busy)",
]


@pytest.mark.timeout(240)
def test_smoke_run_prints_every_row_for_both_databases() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    cells = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in done.stdout.splitlines()
        if line.startswith(("| postgresql |", "| sqlite |"))
    ]
    for database in ("postgresql", "sqlite"):
        rows = [row for row in cells if row[0] == database]
        names = [re.sub(r"across [\d,]+ submits", "across N submits", row[1]) for row in rows]
        assert names == FIGURES, done.stdout
        assert all(row[2] and row[2] != "—" for row in rows), done.stdout
