"""The processes and data of one database's benchmark: ``wfrun serve --no-worker`` and
``wfrun worker`` subprocesses (the chaos tests' ``Cluster``), the customers and the trivial
built-in workflow, and what /proc says about a process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.chaos.harness import Cluster, Proc
from tests.support.factories import customer, operator
from tests.support.waiting import until_sync

from wfrun.config import Settings, WorkerSettings
from wfrun.db.database import Database
from wfrun.runtime import build_runtime
from wfrun.services import catalog

TRIVIAL: dict[str, Any] = {
    "format": "wfrun.workflow/v1",
    "slug": "bench-trivial",
    "title": "Bench trivial",
    "engine": "local",
    "graph": {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "b"}},
    },
    "inputs": [],
    "outputs": [{"key": "n2_images", "type": "image", "multiple": True}],
    "pricing": {"fixed_fee": "0.01", "estimated_seconds": 1},
}
CLIENTS = 32


@dataclass(frozen=True)
class Setup:
    workflow_id: str
    big: tuple[str, str]
    """(account id, API key) of the account that owns the 1M runs."""
    load: list[tuple[str, str]]
    """One funded account and key per submitting client."""
    background: tuple[str, str]


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=url,
        data_dir=data_dir,
        secret_key="bench-secret",
        seed_demo=False,
        worker=WorkerSettings(),
    )


async def provision(settings: Settings) -> Setup:
    rt = await build_runtime(settings)
    try:
        owner = await operator(rt)
        imported = await catalog.import_package(
            rt.db, owner_id=owner, document=TRIVIAL, publish=True
        )
        people = [await customer(rt, balance="100000000") for _ in range(CLIENTS + 2)]
    finally:
        await rt.close()
    pairs = [(who.account_id, who.key) for who in people]
    return Setup(imported.workflow_id, pairs[0], pairs[2:], pairs[1])


def submit_body(workflow_id: str, key: str) -> str:
    return json.dumps({"workflow_id": workflow_id, "idempotency_key": key, "inputs": {}})


def submit(api: str, token: str, body: str) -> str:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    answer = httpx.post(f"{api}/workflow/run/submit", content=body, headers=headers, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["data"]["run_order_id"])


def wait_status(api: str, token: str, run_id: str, wanted: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{api}/workflow/run/execution"

    def reached() -> bool | None:
        params = {"run_order_id": run_id}
        data = httpx.get(url, params=params, headers=headers, timeout=30).json()["data"]
        return True if data["status"] == wanted else None

    until_sync(reached, what=f"run {run_id} {wanted}", timeout=120, interval=0.05)


def stop(proc: Proc) -> None:
    """SIGTERM (the worker drains its runs) and reap."""
    if proc.popen.poll() is None:
        proc.signal(signal.SIGTERM)
        try:
            proc.popen.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_worker(group: Cluster, name: str, concurrency: int) -> Proc:
    proc, _ = group.worker(name, "--concurrency", str(concurrency))
    return proc


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadgen(api: str, phases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Runs the plan in a separate load-generator process; its results by phase name."""
    plan = json.dumps({"base": api, "phases": phases})
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen", plan],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-4000:]}")
    return {item["name"]: item for item in json.loads(done.stdout)}


async def count_status(url: str, status: str) -> int:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as conn:
            sql = f"SELECT count(*) FROM runs WHERE status = '{status}'"
            return int((await conn.exec_driver_sql(sql)).scalar_one())
    finally:
        await db.dispose()


async def count_statuses(url: str) -> dict[str, int]:
    """Runs submitted through the API (those with a job: the seeded ones have none) by status,
    in one query. Counting every run instead scanned the seeded 1,200,000 each time, four times
    a second during the drain, on the cores the worker and PostgreSQL share."""
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as conn:
            sql = (
                "SELECT r.status, count(*) AS n FROM jobs j JOIN runs r ON r.id = j.run_id "
                "GROUP BY r.status"
            )
            rows = (await conn.exec_driver_sql(sql)).mappings()
            return {str(row["status"]): int(row["n"]) for row in rows}
    finally:
        await db.dispose()


def drain(group: Cluster, url: str, seconds: float) -> dict[str, float]:
    """One ``wfrun worker --concurrency 64`` on the queued runs for ``seconds`` (or until none
    is left): ``rps``, the runs finished per second from the first one finished to the end (the
    worker's start-up left out: ``startup`` seconds); ``rps_from_start``, the runs finished or
    running no more over the whole time, start-up included (the figure before issue 17's batch
    claims); ``cpu_ms_per_run``, the worker process's CPU per run finished over the same window
    as ``rps`` (steadier than a rate on a shared machine); ``in_flight``, the most seen running
    at once."""
    before = asyncio.run(count_statuses(url))
    queued, done_before = before.get("queued", 0), before.get("succeeded", 0)
    worker = start_worker(group, "drain", 64)
    began, in_flight, left, running = time.perf_counter(), 0, queued, 0
    first: tuple[float, int, float] | None = None
    done, at, cpu = 0, began, 0.0
    while time.perf_counter() - began < seconds and left + running > 0:
        time.sleep(0.25)
        counts = asyncio.run(count_statuses(url))
        at, cpu = time.perf_counter(), cpu_seconds(worker.popen.pid)
        running, left = counts.get("running", 0), counts.get("queued", 0)
        done = counts.get("succeeded", 0) - done_before
        in_flight = max(in_flight, running)
        if first is None and done:
            first = (at, done, cpu)
    elapsed = time.perf_counter() - began
    stop(worker)
    start, done_at_start, cpu_at_start = first or (began, 0, 0.0)
    finished = done - done_at_start
    return {
        "rps": finished / max(at - start, 1e-9),
        "rps_from_start": (queued - left - running) / elapsed,
        "cpu_ms_per_run": (cpu - cpu_at_start) * 1000 / max(finished, 1),
        "startup": start - began,
        "in_flight": in_flight,
        "queued": queued,
    }
