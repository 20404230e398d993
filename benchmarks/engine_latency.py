"""What wfrun adds to a ComfyUI run, and keep-alive latency of its API, measured in one run.

    .venv/bin/python -m benchmarks.engine_latency [--runs 100] [--requests 400]

Run it from the repository root on a quiet machine, with PostgreSQL on 127.0.0.1:5432
(``WFRUN_TEST_PG_DSN`` overrides the admin DSN); it creates and drops its own database.

This process is the load generator. It starts the ComfyUI stand-in of the tests (the recorded
protocol) in a process of its own, as ComfyUI is (``benchmarks.comfy_process``), and ``wfrun
serve`` (API + embedded worker, as an operator runs it) on a fresh PostgreSQL database, and
talks to both over loopback keep-alive connections. The same EmptyImage → ImageInvert →
SaveImage prompt (a new colour each time, so nothing is served from cache) runs in rounds of
three, directly, through wfrun polled, through wfrun streamed, so every way sees the same
machine. Times come from one clock (``perf_counter``: ``CLOCK_MONOTONIC``, the same in
every process): the stand-in's moments are stamped when it sends ``execution_start`` and
``executing(null)`` (history written).

- **start**: direct, ``POST /prompt`` sent → ``execution_start``; through wfrun, the submit's
  answer received (its transaction has committed) → ``execution_start`` of the run's prompt
  (claim, input preparation, dispatch).
- **done**: direct, ``executing(null)`` → the client has it over its WebSocket and has fetched
  ``/history`` and the output's ``/view`` (the result in hand); through wfrun, the same moment →
  the client sees ``succeeded``, two ways, on runs of their own: on the run's event stream
  (``GET /workflow/run/events``, opened right after the submit: the ``done`` event, pushed once
  outputs are stored and the freeze settled), and by polling ``GET /workflow/run/execution``
  back to back, 1 ms apart, from that moment on only (so polling does not load the server while
  the prompt runs). A poll lands somewhere in the server's ending and pays up to one more poll
  to see it, and each poll competes with the ending for the one event loop: the stream shows
  what wfrun adds, the poll what a polling client gets. Start is measured on the polled runs
  (the client sends nothing but the submit).
- **wfrun adds**: the through-wfrun percentile minus the direct one (targets, issue 11: p50
  ≤ 10 ms and p99 ≤ 25 ms for both).
- **CPU per run**: what ``wfrun serve`` spent (user + system, from ``/proc``) over the
  measured rounds, divided by its runs, with the ``run/execution`` polls per run beside it: on
  a shared machine the latencies move with its load, this much less, so it shows whether a
  change made the path cheaper.
- **keep-alive**: ``GET /balance/info`` back to back on one connection (target p50 ≤ 2 ms);
  the baseline beside it is the stand-in's ``GET /system_stats`` on the same kind of server
  socket (uvicorn on loopback), so the ratio shows what wfrun's request handling costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import make_settings
from tests.support.databases import create_pg_database, drop_pg_database, pg_url
from tests.support.factories import Customer, customer, operator
from websockets.asyncio.client import ClientConnection, connect

from benchmarks import comfy_process
from wfrun.api.deps import API_PREFIX
from wfrun.runtime import build_runtime
from wfrun.services import catalog, instances

GRAPH: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255},
    },
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "b"}},
}
PACKAGE: dict[str, Any] = {
    "format": "wfrun.workflow/v1",
    "slug": "bench",
    "title": "bench",
    "engine": "comfyui",
    "graph": GRAPH,
    "inputs": [{"key": "n1_color", "type": "integer", "default_value": 0}],
    "outputs": [{"key": "n3_images", "type": "image", "multiple": True}],
    "pricing": {"fixed_fee": "0.01", "estimated_seconds": 1},
}
BANNER = re.compile(r"serving (http://127\.0\.0\.1:\d+)")


@dataclass
class Marks:
    """When the stand-in started and finished each prompt, as its process reports them
    (``benchmarks.comfy_process``), read by :meth:`follow`."""

    started: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def follow(self, lines: asyncio.StreamReader) -> None:
        while line := await lines.readline():
            kind, prompt_id, at = line.decode().split()
            async with self.changed:
                if kind == comfy_process.START:
                    self.started[prompt_id] = float(at)
                    self.order.append(prompt_id)
                else:
                    self.done[prompt_id] = float(at)
                self.changed.notify_all()

    async def first_start_after(self, seen: int) -> str:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.order) > seen)
            return self.order[seen]

    async def start_of(self, prompt_id: str) -> float:
        async with self.changed:
            await self.changed.wait_for(lambda: prompt_id in self.started)
            return self.started[prompt_id]

    async def done_of(self, prompt_id: str) -> float:
        async with self.changed:
            await self.changed.wait_for(lambda: prompt_id in self.done)
            return self.done[prompt_id]


@dataclass
class Samples:
    start: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    polls: int = 0


def _graph(color: int) -> dict[str, Any]:
    return {**GRAPH, "1": {**GRAPH["1"], "inputs": {**GRAPH["1"]["inputs"], "color": color}}}


async def _ws_done(ws: ClientConnection, prompt_id: str) -> None:
    while True:
        message = json.loads(await ws.recv())
        data = message.get("data", {})
        done = message.get("type") == "executing" and data.get("node") is None
        if done and data.get("prompt_id") == prompt_id:
            return


async def direct_run(
    http: httpx.AsyncClient, ws: ClientConnection, marks: Marks, color: int, out: Samples
) -> None:
    prompt_id = str(uuid.uuid4())
    body = {"prompt": _graph(color), "prompt_id": prompt_id, "client_id": "bench"}
    sent = time.perf_counter()
    (await http.post("/prompt", json=body)).raise_for_status()
    await _ws_done(ws, prompt_id)
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    (await http.get("/view", params=entry["outputs"]["3"]["images"][0])).raise_for_status()
    visible = time.perf_counter()
    out.start.append(await marks.start_of(prompt_id) - sent)
    out.done.append(visible - await marks.done_of(prompt_id))


async def wfrun_run(
    http: httpx.AsyncClient, workflow_id: str, marks: Marks, color: int, out: Samples
) -> None:
    """One run through wfrun, seen ending by polling ``run/execution``."""
    seen = len(marks.order)
    committed, run_order_id = await _submit(http, workflow_id, color)
    prompt_id = await marks.first_start_after(seen)
    engine_done = await marks.done_of(prompt_id)
    params = {"run_order_id": run_order_id}
    while True:
        view = (await http.get("/workflow/run/execution", params=params)).json()["data"]
        out.polls += 1
        if view["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.001)
    visible = time.perf_counter()
    if view["status"] != "succeeded":
        raise RuntimeError(f"run {run_order_id} failed: {view}")
    out.start.append(await marks.start_of(prompt_id) - committed)
    out.done.append(visible - engine_done)


async def streamed_run(
    http: httpx.AsyncClient, workflow_id: str, marks: Marks, color: int, out: Samples
) -> None:
    """One run through wfrun, seen ending on its event stream (``done``), opened at submit."""
    seen = len(marks.order)
    committed, run_order_id = await _submit(http, workflow_id, color)
    params = {"run_order_id": run_order_id}
    async with http.stream("GET", "/workflow/run/events", params=params) as stream:
        prompt_id = await marks.first_start_after(seen)
        done = await _done_event(stream)
    visible = time.perf_counter()
    if done["run_status"] != "succeeded":
        raise RuntimeError(f"run {run_order_id} failed: {done}")
    out.start.append(await marks.start_of(prompt_id) - committed)
    out.done.append(visible - await marks.done_of(prompt_id))


async def _done_event(stream: httpx.Response) -> dict[str, Any]:
    """The ``done`` event's data (the run's ``run/info``), once it arrives."""
    event = ""
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif event == "done" and line.startswith("data: "):
            return json.loads(line.removeprefix("data: "))  # type: ignore[no-any-return]
    raise RuntimeError("the run's event stream ended without a done event")


async def _submit(http: httpx.AsyncClient, workflow_id: str, color: int) -> tuple[float, str]:
    """Submits a run; when its answer arrived (its transaction committed), and its id."""
    body: dict[str, Any] = {"workflow_id": workflow_id, "idempotency_key": uuid.uuid4().hex}
    body["inputs"] = {"n1_color": color}
    answer = await http.post("/workflow/run/submit", json=body)
    committed = time.perf_counter()
    return committed, answer.json()["data"]["run_order_id"]


async def keep_alive(http: httpx.AsyncClient, path: str, n: int) -> list[float]:
    times = []
    for i in range(n + 20):
        began = time.perf_counter()
        (await http.get(path)).raise_for_status()
        if i >= 20:  # warm-up
            times.append(time.perf_counter() - began)
    return times


@dataclass
class Comfy:
    """The stand-in's process (``benchmarks.comfy_process``): its address and its stamps."""

    process: asyncio.subprocess.Process
    base_url: str
    port: int
    lines: asyncio.StreamReader

    @classmethod
    async def start(cls, root: Path) -> Comfy:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.comfy_process",
            str(root),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 60)
        word, base_url, port = first.decode().split()
        if word != "url":
            raise RuntimeError(f"the ComfyUI stand-in did not start: {first!r}")
        return cls(process, base_url, int(port), process.stdout)

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), 30)


async def prepare(url: str, comfy_url: str, data_dir: Path) -> tuple[str, Customer]:
    """Instance, published package and a funded customer, written before ``serve`` starts."""
    rt = await build_runtime(make_settings(url, data_dir))
    try:
        await instances.add_instance(rt.db, url=comfy_url, capacity=1, labels={})
        owner = await operator(rt)
        imported = await catalog.import_package(
            rt.db, owner_id=owner, document=PACKAGE, publish=True
        )
        return imported.workflow_id, await customer(rt, balance="100000")
    finally:
        await rt.close()


def start_serve(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``wfrun serve --port 0`` on the prepared database; returns it and its base URL."""
    env = os.environ | {
        "WFRUN_DATABASE_URL": url,
        "WFRUN_SECRET_KEY": "bench-secret",
        "WFRUN_SEED_DEMO": "false",
    }
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 - lives as long as the process
    argv = [sys.executable, "-m", "wfrun", "serve", "--port", "0", "--data-dir", str(data_dir)]
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    end = time.monotonic() + 60
    while time.monotonic() < end and process.poll() is None:
        found = BANNER.search((data_dir / "serve.log").read_text(errors="replace"))
        if found:
            return process, found.group(1)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("wfrun serve did not start: " + (data_dir / "serve.log").read_text())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def _row(name: str, values: list[float]) -> str:
    return f"  {name:<26} p50 {_ms(values, 50):8.2f} ms   p99 {_ms(values, 99):8.2f} ms"


def _added(name: str, wfrun: list[float], direct: list[float]) -> str:
    p50, p99 = _ms(wfrun, 50) - _ms(direct, 50), _ms(wfrun, 99) - _ms(direct, 99)
    ratio = _ms(wfrun, 50) / max(_ms(direct, 50), 1e-6)
    verdict = "meets" if p50 <= 10 and p99 <= 25 else "MISSES"
    return (
        f"  {name:<26} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   "
        f"({ratio:.1f}x direct p50; {verdict} ≤ 10 / ≤ 25 ms)"
    )


def report(direct: Samples, polled: Samples, streamed: Samples) -> None:
    print("start (submit committed → engine starts the prompt)")
    print(_row("direct to ComfyUI", direct.start))
    print(_row("through wfrun", polled.start))
    print(_added("wfrun adds", polled.start, direct.start))
    print("done (engine finished → the client has the result / sees `succeeded`)")
    print(_row("direct to ComfyUI", direct.done))
    print(_row("wfrun, event stream", streamed.done))
    print(_added("wfrun adds (stream)", streamed.done, direct.done))
    print(_row("wfrun, polled", polled.done))
    print(_added("wfrun adds (polled)", polled.done, direct.done))


def report_keep_alive(balance: list[float], stats: list[float]) -> None:
    print("keep-alive, one connection, back to back")
    print(_row("stand-in /system_stats", stats))
    print(_row("wfrun /balance/info", balance))
    ratio = _ms(balance, 50) / max(_ms(stats, 50), 1e-6)
    verdict = "meets" if _ms(balance, 50) <= 2 else "MISSES"
    print(f"  /balance/info p50 is {ratio:.1f}x the stand-in's; {verdict} p50 ≤ 2 ms")


async def measure(
    comfy: Comfy, api: str, key: dict[str, str], workflow_id: str, args: Any, pid: int
) -> None:
    marks = Marks()
    following = asyncio.create_task(marks.follow(comfy.lines))
    direct, polled, streamed = Samples(), Samples(), Samples()
    async with (
        httpx.AsyncClient(base_url=comfy.base_url) as comfy_http,
        httpx.AsyncClient(base_url=api + API_PREFIX, headers=key, timeout=30) as http,
        connect(f"ws://127.0.0.1:{comfy.port}/ws?clientId=bench", max_size=None) as ws,
    ):
        warm = Samples()  # five warm-up rounds, thrown away
        for i in range(-5, args.runs):  # interleaved: every way sees the same machine
            if i == 0:
                cpu = cpu_seconds(pid)
            await direct_run(comfy_http, ws, marks, 600_000 + i, direct if i >= 0 else warm)
            await wfrun_run(http, workflow_id, marks, 700_000 + i, polled if i >= 0 else warm)
            await streamed_run(http, workflow_id, marks, 800_000 + i, streamed if i >= 0 else warm)
        cpu = cpu_seconds(pid) - cpu
        stats = await keep_alive(comfy_http, "/system_stats", args.requests)
        balance = await keep_alive(http, "/balance/info", args.requests)
    following.cancel()
    print(
        f"{args.runs} rounds (direct, polled, streamed); ComfyUI stand-in and wfrun serve on loopback"
    )
    report(direct, polled, streamed)
    report_keep_alive(balance, stats)
    print(
        f"wfrun serve CPU per run: {cpu * 1000 / (2 * args.runs):.1f} ms "
        f"({polled.polls / args.runs:.1f} run/execution polls per polled run included)"
    )


async def main(args: Any) -> None:
    name = f"wfrun_bench_{uuid.uuid4().hex[:8]}"
    await create_pg_database(name)
    with tempfile.TemporaryDirectory() as tmp:
        comfy = await Comfy.start(Path(tmp) / "comfy")
        serve: subprocess.Popen[bytes] | None = None
        try:
            workflow_id, alice = await prepare(pg_url(name), comfy.base_url, Path(tmp))
            serve, api = start_serve(pg_url(name), Path(tmp))
            await measure(comfy, api, alice.headers, workflow_id, args, serve.pid)
        finally:
            if serve is not None:
                serve.terminate()
                serve.wait(60)
            await comfy.stop()
            await drop_pg_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args()))
