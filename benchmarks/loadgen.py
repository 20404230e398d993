"""The load generator: a process of its own, talking to ``wfrun serve`` over loopback keep-alive
HTTP/1.1 (raw asyncio streams, no client library on the hot path, so its own CPU stays small).

    python -m benchmarks.loadgen '<plan as JSON>'

It reads one plan (a list of phases) and prints one JSON document: per phase its figures and
this process's own CPU use (cores busy = CPU seconds / wall seconds), so a reader sees it was not
the bound. Phases:

* ``closed`` — ``clients`` connections, each sending requests back to back; the answers that
  complete in a window of ``seconds`` (after ``warmup`` seconds) count: requests/s, p50, p99, non-2xx count. ``{key}`` in a
  body is replaced by a key unique to the request (``{client}`` by the client number).
* ``dispatch`` — one SSE account stream open; ``runs`` submits one after another, each waiting
  for its ``done`` event: submit sent → ``running`` (the worker's clock when its claim
  began; the submit itself included, as its commit time is not visible from outside), submit sent → ``succeeded`` visible over ``GET /workflow/run/execution``, and for every
  ``status``/``progress`` event its arrival minus its own ``at``. With ``background_rps``, a
  second connection submits from another key at that rate meanwhile (dispatch under load).
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Conn:
    """One keep-alive HTTP/1.1 connection (responses must carry Content-Length)."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """One request; a keep-alive connection the server closed while idle is reopened."""
        fresh = self.writer is None
        try:
            return await self._send(method, path, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            if fresh:
                raise
            self.close()
            self.writer = None
            return await self._send(method, path, body)

    async def _send(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        ).encode()
        self.writer.write(head + self.auth + b"\r\n" + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = 0
        for line in headers.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    async def json(self, method: str, path: str, body: Any = None) -> Any:
        raw = b"" if body is None else json.dumps(body).encode()
        status, answer = await self.request(method, path, raw)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {answer[:300]!r}")
        return json.loads(answer)["data"]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def quantiles(seconds: list[float]) -> dict[str, float]:
    if len(seconds) < 2:
        value = seconds[0] * 1000 if seconds else float("nan")
        return {"p50": value, "p99": value, "n": len(seconds)}
    q = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p99": q[98] * 1000, "n": len(seconds)}


def _body(template: str | None, client: int, i: int, tag: str) -> bytes:
    if template is None:
        return b""
    key = f"{tag}-{client}-{i}"
    return template.replace("{key}", key).replace("{client}", str(client)).encode()


async def closed(base: str, phase: dict[str, Any]) -> dict[str, Any]:
    tokens: list[str] = phase["tokens"]
    clients, warmup, seconds = phase["clients"], phase.get("warmup", 0.5), phase["seconds"]
    latencies: list[float] = []
    errors = [0]
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + seconds

    async def client(n: int) -> None:
        conn = Conn(base, tokens[n % len(tokens)])
        path = phase["paths"][n % len(phase["paths"])]
        i = 0
        while (began := time.perf_counter()) < stop:
            body = _body(phase.get("body"), n, 0 if phase.get("same_key") else i, phase["tag"])
            status, _ = await conn.request(phase["method"], path, body)
            i += 1
            ended = time.perf_counter()
            if measure_from <= ended <= stop:  # answers completed inside the window count
                latencies.append(ended - began)
                errors[0] += status != 200
        conn.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return {"rps": len(latencies) / seconds, "errors": errors[0], **quantiles(latencies)}


async def _events(base: str, token: str, out: asyncio.Queue[tuple[float, Any]]) -> None:
    import httpx  # only here: the SSE reader is not on the request-rate path
    from tests.support.sse import Event, parse

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as http,
        http.stream("GET", "/workflow/run/events", headers=headers) as response,
    ):
        async for item in parse(response.aiter_lines()):
            if isinstance(item, Event):
                out.put_nowait((time.time(), item))


async def _background(base: str, token: str, body: str, rps: float) -> None:
    conn = Conn(base, token)
    i = 0
    try:
        while True:
            began = time.perf_counter()
            await conn.request("POST", "/workflow/run/submit", _body(body, 0, i, "bg"))
            i += 1
            await asyncio.sleep(max(0.0, 1 / rps - (time.perf_counter() - began)))
    finally:
        conn.close()


def _at(event: Any) -> float:
    return datetime.fromisoformat(event.data["at"]).timestamp()


async def _one_run(
    conn: Conn, body: bytes, queue: asyncio.Queue[tuple[float, Any]], out: dict[str, list[float]]
) -> None:
    sent = time.time()
    status, raw = await conn.request("POST", "/workflow/run/submit", body)
    if status != 200:
        raise RuntimeError(f"submit: {status} {raw[:300]!r}")
    run_id = json.loads(raw)["data"]["run_order_id"]
    while True:
        arrived, event = await asyncio.wait_for(queue.get(), 60)
        if event.data.get("run_order_id") != run_id:
            continue
        if event.event in ("status", "progress") and "at" in event.data:
            out["events"].append(arrived - _at(event))
        if event.event == "status" and event.data.get("run_status") == "running":
            out["dispatch"].append(_at(event) - sent)
        if event.event == "done":
            break
    path = f"/workflow/run/execution?run_order_id={run_id}"
    while (await conn.json("GET", path))["status"] not in ("succeeded", "failed", "cancelled"):
        await asyncio.sleep(0.001)
    out["end_to_end"].append(time.time() - sent)


async def dispatch(base: str, phase: dict[str, Any]) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
    reader = asyncio.create_task(_events(base, phase["tokens"][0], queue))
    tasks = [reader]
    if phase.get("background_rps"):
        args = (base, phase["tokens"][1], phase["body"], phase["background_rps"])
        tasks.append(asyncio.create_task(_background(*args)))
    await asyncio.sleep(0.5)  # the stream is open
    conn = Conn(base, phase["tokens"][0])
    out: dict[str, list[float]] = {"dispatch": [], "end_to_end": [], "events": []}
    try:
        for i in range(phase["runs"]):
            await _one_run(conn, _body(phase["body"], 0, i, phase["tag"]), queue, out)
            await asyncio.sleep(0.02)
    finally:
        conn.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {name: quantiles(values) for name, values in out.items()}


async def run_plan(plan: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for phase in plan["phases"]:
        cpu, wall = cpu_seconds(), time.perf_counter()
        kind = closed if phase["kind"] == "closed" else dispatch
        result = await kind(plan["base"], phase)
        busy = (cpu_seconds() - cpu) / (time.perf_counter() - wall)
        results.append({"name": phase["name"], "loadgen_cores": busy, **result})
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run_plan(json.loads(sys.argv[1])))))
