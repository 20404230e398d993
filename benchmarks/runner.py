"""One database's benchmark, start to finish: schema, provisioning, seed, the measurements over
HTTP from the load-generator process, the worker's drain, and the limits (see __main__)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.chaos.harness import Cluster, cluster

from benchmarks import limits, seed, stack
from wfrun.db.database import Database


@dataclass(frozen=True)
class Mode:
    name: str
    seconds: float
    """Each closed-loop phase."""
    runs: int
    """Sequential runs for dispatch / end-to-end."""
    drain_seconds: float
    counts: seed.Counts
    sqlite_counts: seed.Counts
    """Fewer on SQLite in full mode: one writer loads 1.2M runs in ~5 min on 2 cores."""

    def for_url(self, url: str) -> seed.Counts:
        return self.sqlite_counts if url.startswith("sqlite") else self.counts


FULL = seed.Counts(2000, 200_000, 1_000_000)
QUICK = seed.Counts(200, 10_000, 20_000)
SMOKE = seed.Counts(10, 100, 100)
MODES = {
    "full": Mode("full", 5, 50, 15, FULL, seed.Counts(1000, 50_000, 200_000)),
    "quick": Mode("quick", 2, 15, 6, QUICK, QUICK),
    "smoke": Mode("smoke", 1, 3, 2, SMOKE, SMOKE),
}


def _closed(name: str, tokens: list[str], clients: int, mode: Mode, **extra: Any) -> dict[str, Any]:
    method = "POST" if "body" in extra else "GET"
    return {
        "kind": "closed",
        "name": name,
        "tokens": tokens,
        "clients": clients,
        "seconds": mode.seconds,
        "warmup": min(1.0, mode.seconds / 4),
        "method": method,
        "tag": name,
        **extra,
    }


def _template_run(group: Cluster, api: str, setup: stack.Setup) -> str:
    """A run wfrun executed end to end: the seed's template."""
    token = setup.big[1]
    run_id = stack.submit(api, token, stack.submit_body(setup.workflow_id, "template"))
    worker = stack.start_worker(group, "template", 1)
    stack.wait_status(api, token, run_id, "succeeded")
    stack.stop(worker)
    return run_id


def _at_scale(api: str, setup: stack.Setup, queued: str, mode: Mode) -> dict[str, Any]:
    token = [setup.big[1]]
    return stack.loadgen(
        api,
        [
            _closed("list", token, 1, mode, paths=["/workflow/run/list?page=1&page_size=20"]),
            _closed(
                "queued", token, 1, mode, paths=[f"/workflow/run/execution?run_order_id={queued}"]
            ),
        ],
    )


def _dispatch(group: Cluster, api: str, setup: stack.Setup, mode: Mode) -> dict[str, Any]:
    body = stack.submit_body(setup.workflow_id, "{key}")
    worker = stack.start_worker(group, "worker", 8)
    tokens = [setup.big[1], setup.background[1]]
    base = {"kind": "dispatch", "tokens": tokens, "runs": mode.runs, "body": body}
    try:
        return stack.loadgen(
            api,
            [
                {**base, "name": "idle", "tag": "idle"},
                {**base, "name": "loaded", "tag": "loaded", "background_rps": 10},
            ],
        )
    finally:
        stack.stop(worker)


def _submit_phases(setup: stack.Setup, mode: Mode) -> list[dict[str, Any]]:
    tokens = [key for _, key in setup.load]
    body = stack.submit_body(setup.workflow_id, "{key}")
    paths = {"paths": ["/workflow/run/submit"]}
    return [_closed(f"submit{c}", tokens, c, mode, body=body, **paths) for c in (1, 8, 32)]


def _read_phases(setup: stack.Setup, finished: str, mode: Mode) -> list[dict[str, Any]]:
    tokens = [key for _, key in setup.load]
    replay = stack.submit_body(setup.workflow_id, "replay-{client}")
    execution = [f"/workflow/run/execution?run_order_id={finished}"]
    submit = ["/workflow/run/submit"]
    return [
        _closed("replay", tokens, 8, mode, body=replay, same_key=True, paths=submit),
        _closed("balance", tokens, 8, mode, paths=["/balance/info"]),
        _closed("execution", [setup.big[1]], 8, mode, paths=execution),
    ]


async def _limit_inputs(url: str, setup: stack.Setup, finished: str) -> dict[str, Any]:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction(write=True) as conn:
            quote = (
                await conn.exec_driver_sql("SELECT quote_amount FROM bench_tpl_runs")
            ).scalar_one()
            submit = await limits.submit_statements(conn, setup.workflow_id, int(quote))
            clone = seed.clone_sql(
                "accounts",
                await seed.columns(conn, "accounts"),
                {"id": "'pga_' || (g.n - 1)", "available": "100000000000000000"},
                "accounts",
                f", {seed.series(conn.dialect.name, stack.CLIENTS)[1]} WHERE tpl.id = '{setup.big[0]}'",
            )
            await conn.exec_driver_sql(seed.series(conn.dialect.name, stack.CLIENTS)[0] + clone)
            key_hash = (
                await conn.exec_driver_sql(
                    f"SELECT key_hash FROM api_keys WHERE account_id = '{setup.big[0]}'"
                )
            ).scalar_one()
    finally:
        await db.dispose()
    return {"submit": submit, **limits.read_statements(key_hash, setup.big[0], finished)}


def _limits(url: str, tmp: Path, inputs: dict[str, Any], mode: Mode) -> dict[str, float]:
    out: dict[str, float] = {}
    seconds = max(1.0, mode.seconds)
    if url.startswith("sqlite"):
        path = Path(urlsplit(url).path)
        one = limits.sqlite_anchor(path, inputs["submit"], seconds, write=True)
        out.update({f"submit{c}": one for c in (1, 8, 32)})
        for read in ("balance", "execution"):
            out[read] = limits.sqlite_anchor(path, inputs[read], seconds, write=False)
        return out
    parts = urlsplit(url)
    dsn = {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": parts.username or "postgres",
        "dbname": parts.path.lstrip("/"),
    }
    for c in (1, 8, 32):
        out[f"submit{c}"] = limits.pgbench(dsn, inputs["submit"], c, seconds, tmp)
    for read in ("balance", "execution"):
        out[read] = limits.pgbench(dsn, inputs[read], 8, seconds, tmp)
    return out


def bench(url: str, tmp: Path, mode: Mode) -> dict[str, Any]:
    """Every measurement on one database (``url``, created empty by the caller)."""
    settings = stack.settings_for(url, tmp / "data")
    counts = mode.for_url(url)
    results: dict[str, Any] = {"mode": mode.name, "counts": counts.__dict__}
    with cluster(settings, tmp) as group:
        group.cli("db", "upgrade", "--json")
        setup = asyncio.run(stack.provision(settings))
        serve, api = group.serve("api", "--no-worker")
        finished = _template_run(group, api, setup)
        began = time.perf_counter()
        asyncio.run(seed.seed(url, setup.load[0][0], setup.big[0], finished, counts))
        results["seed_seconds"] = time.perf_counter() - began
        queued = stack.submit(api, setup.big[1], stack.submit_body(setup.workflow_id, "queued"))
        asyncio.run(seed.stash(url, queued))
        results["scale"] = _at_scale(api, setup, queued, mode)
        results["dispatch"] = _dispatch(group, api, setup, mode)
        results.update(_measure_submits(url, api, serve.popen.pid, setup, finished, mode))
        results["drain"] = stack.drain(group, url, mode.drain_seconds)
        inputs = asyncio.run(_limit_inputs(url, setup, finished))
        results["limits"] = _limits(url, tmp, inputs, mode)
    return results


def bench_drain(url: str, tmp: Path, mode: Mode) -> dict[str, Any]:
    """``--only drain``: the submits at 1, 8, 32 clients (the accept rate) and the worker's
    drain of the runs they queued, on an unseeded database (no reads, no limits)."""
    settings = stack.settings_for(url, tmp / "data")
    results: dict[str, Any] = {"mode": mode.name, "counts": seed.Counts(0, 0, 0).__dict__}
    with cluster(settings, tmp) as group:
        group.cli("db", "upgrade", "--json")
        setup = asyncio.run(stack.provision(settings))
        serve, api = group.serve("api", "--no-worker")
        results["seed_seconds"] = 0.0
        _warm_up(api, setup)
        results.update(_measure_submits(url, api, serve.popen.pid, setup, None, mode))
        results["drain"] = stack.drain(group, url, mode.drain_seconds)
    return results


WARM_UP_SUBMITS = 50


def _warm_up(api: str, setup: stack.Setup) -> None:
    """Submits before the measured ones, so that the server's RSS before them is that of a
    server that has answered (the full run's earlier phases do this): its first requests fill
    caches (compiled statements, prepared statements, validators) once, ~10 MiB that an RSS
    taken cold counted as growth across the submits."""
    token = setup.big[1]
    for i in range(WARM_UP_SUBMITS):
        stack.submit(api, token, stack.submit_body(setup.workflow_id, f"warm-{i}"))


def _measure_submits(
    url: str, api: str, pid: int, setup: stack.Setup, finished: str | None, mode: Mode
) -> dict[str, Any]:
    """Submits at 1, 8, 32 clients (server RSS and CPU around them), then replay and reads
    (with a ``finished`` run to read)."""
    rss_before, cpu_before = stack.rss_mib(pid), stack.cpu_seconds(pid)
    queued_before = asyncio.run(stack.count_status(url, "queued"))
    measured = stack.loadgen(api, _submit_phases(setup, mode))
    submits = asyncio.run(stack.count_status(url, "queued")) - queued_before
    cpu = stack.cpu_seconds(pid) - cpu_before
    rss = {"before": rss_before, "after": stack.rss_mib(pid), "submits": submits}
    if finished is not None:
        measured.update(stack.loadgen(api, _read_phases(setup, finished, mode)))
    return {
        "throughput": measured,
        "rss": rss,
        "server_cpu_ms_per_submit": cpu * 1000 / max(1, submits),
    }
