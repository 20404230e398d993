"""Event latency: a run's state change → an SSE client, across processes, on SQLite and
PostgreSQL.

    .venv/bin/python -m benchmarks.event_latency [--markers 200] [--runs 20] [--db sqlite,postgresql]

Processes on loopback: ``wfrun serve --no-worker`` (the API, streaming), ``wfrun worker``
(runs the runs), and this one: the load generator and the SSE client (httpx, one account
stream, ``GET /workflow/run/events``). Two measurements per database:

* **marker** — this process commits a run log line with wfrun's own ``run_log.log_event`` on
  its own connection (a third process to the API) and times from the moment its COMMIT
  returned until the line arrives as a ``log`` event: the bare cross-process path (NOTIFY on
  PostgreSQL; the API's 25 ms run-stream poller on SQLite). One marker at a time.
* **runs** — real runs on the built-in engine, executed by the worker process; for every
  ``status`` and ``progress`` event, from the change's own timestamp (``at``: the worker's
  clock when its transaction began) to its arrival. Same machine, same clock.

Prints p50 / p99 / max per measurement and database.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
from tests.chaos.harness import Customer, chaos_settings, cluster, submit_acknowledged
from tests.support.databases import create_pg_database, drop_pg_database, pg_url
from tests.support.sse import Event, parse

from wfrun.clock import utcnow
from wfrun.db import runs as runs_db
from wfrun.db.database import Database
from wfrun.services.run_log import log_event

Arrival = tuple[float, float, Event]
"""(perf_counter, wall clock) at arrival, and the event."""


async def _read(http: httpx.AsyncClient, who: Customer, out: asyncio.Queue[Arrival]) -> None:
    headers = {"Authorization": f"Bearer {who.key}"}
    async with http.stream("GET", "/workflow/run/events", headers=headers) as response:
        async for item in parse(response.aiter_lines()):
            if isinstance(item, Event):
                out.put_nowait((time.perf_counter(), time.time(), item))


async def _next(queue: asyncio.Queue[Arrival], wanted: str, **match: object) -> Arrival:
    while True:
        arrival = await asyncio.wait_for(queue.get(), 30)
        event = arrival[2]
        if event.event == wanted and all(event.data.get(k) == v for k, v in match.items()):
            return arrival


async def markers(url: str, run_id: str, queue: asyncio.Queue[Arrival], n: int) -> list[float]:
    db = Database(url, pool_size=1)
    latencies = []
    try:
        async with db.transaction() as conn:
            run = await runs_db.find_run(conn, run_id)
        assert run is not None
        for i in range(n):
            async with db.transaction(write=True) as conn:
                await log_event(conn, run, utcnow(), "bench", f"marker {i}")
            committed = time.perf_counter()
            arrived, _, _ = await _next(queue, "log", message=f"marker {i}")
            latencies.append(arrived - committed)
            await asyncio.sleep(0.01)
    finally:
        await db.dispose()
    return latencies


async def runs(
    http: httpx.AsyncClient, who: Customer, queue: asyncio.Queue[Arrival], n: int
) -> list[float]:
    latencies = []
    for i in range(n):
        (run_id,) = await asyncio.to_thread(_submit, http.base_url, who, f"run-{i}")
        while True:
            _, wall, event = await asyncio.wait_for(queue.get(), 30)
            if event.data.get("run_order_id") != run_id:
                continue
            if event.event in ("status", "progress"):
                at = datetime.fromisoformat(event.data["at"])
                latencies.append(wall - at.timestamp())
            if event.event == "done":
                break
    return latencies


def _submit(base: httpx.URL, who: Customer, key: str) -> list[str]:
    with httpx.Client(base_url=str(base), timeout=30) as http:
        return submit_acknowledged(http, who, [key])


async def measure(
    api: str,
    url: str,
    who: Customer,
    held_run: str,
    counts: tuple[int, int],
    start_worker: Callable[[], object],
) -> tuple[list[float], list[float]]:
    n_markers, n_runs = counts
    queue: asyncio.Queue[Arrival] = asyncio.Queue()
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        reader = asyncio.create_task(_read(http, who, queue))
        await asyncio.sleep(0.5)  # the stream is open and has sent its history
        marker_times = await markers(url, held_run, queue, n_markers)
        await asyncio.to_thread(start_worker)
        run_times = await runs(http, who, queue, n_runs)
        reader.cancel()
    return marker_times, run_times


def bench(url: str, tmp: Path, n_markers: int, n_runs: int) -> tuple[list[float], list[float]]:
    settings = chaos_settings(url, tmp / "data", concurrency=1)
    with cluster(settings, tmp) as group:
        _, api = group.serve("api", "--no-worker")
        who = group.provision(seconds=0.05)
        with httpx.Client(base_url=api, timeout=30) as http:
            (held,) = submit_acknowledged(http, who, ["held"])  # queued: no worker yet
        return asyncio.run(
            measure(api, url, who, held, (n_markers, n_runs), lambda: group.worker("worker"))
        )


def _line(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = statistics.quantiles(ms, n=100)[98]
    return (
        f"  {name:<8} n={len(ms):<4} p50 {statistics.median(ms):6.1f} ms   "
        f"p99 {p99:6.1f} ms   max {ms[-1]:6.1f} ms"
    )


def main(databases: list[str], n_markers: int, n_runs: int) -> None:
    for dialect in databases:
        with tempfile.TemporaryDirectory() as tmp:
            name = f"wfrun_bench_{uuid.uuid4().hex[:8]}"
            if dialect == "postgresql":
                asyncio.run(create_pg_database(name))
                url = pg_url(name)
            else:
                url = f"sqlite:///{tmp}/wfrun.db"
            try:
                marker_times, run_times = bench(url, Path(tmp), n_markers, n_runs)
            finally:
                if dialect == "postgresql":
                    asyncio.run(drop_pg_database(name))
        print(f"{dialect}: state change → SSE client (serve + worker + client processes)")
        print(_line("marker", marker_times))
        print(_line("runs", run_times))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    main(args.db.split(","), args.markers, args.runs)
