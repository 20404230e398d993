"""Submit throughput: wfrun's submit vs raw PostgreSQL running the same-shaped transaction.

    .venv/bin/python -m benchmarks.submit [--requests 2000] [--clients 10]

Prints requests/s and latency percentiles for (1) a raw asyncpg transaction shaped like
DESIGN.md §8 (1 select, 4 inserts, 1 update), (2) wfrun's submit service called directly, and
(3) ``POST /workflow/run/submit`` over HTTP on loopback, with ratios against (1) measured in the
same run. Uses a scratch database on 127.0.0.1:5432, seeded and ANALYZEd first; bounded by the
request count; drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from tests.support.databases import PG_ADMIN_DSN, create_pg_database, drop_pg_database, pg_url
from tests.support.factories import customer, data_uri, operator, png_bytes, publish_demo
from tests.support.server import start_server

from wfrun.config import Settings, WorkerSettings
from wfrun.runtime import build_runtime
from wfrun.services import runs
from wfrun.services.accounts import Principal

RAW_SCHEMA = """
CREATE TABLE acct (id text PRIMARY KEY, available bigint NOT NULL, frozen bigint NOT NULL);
CREATE TABLE wf (id text PRIMARY KEY, price bigint NOT NULL);
CREATE TABLE run (id text PRIMARY KEY, acct text REFERENCES acct, wf text REFERENCES wf,
                  key text, amount bigint, UNIQUE (acct, wf, key));
CREATE TABLE hold (id text PRIMARY KEY, run text REFERENCES run, amount bigint);
CREATE TABLE entry (id text PRIMARY KEY, run text REFERENCES run, amount bigint);
CREATE TABLE job (id text PRIMARY KEY, run text REFERENCES run, status text);
"""


async def _timed(
    n: int, clients: int, one: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(n))

    async def client() -> None:
        for i in counter:
            started = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return n / (time.perf_counter() - started), latencies


def _report(name: str, rps: float, latencies: list[float], baseline: float | None) -> None:
    q = statistics.quantiles(latencies, n=100)
    ratio = f"  {rps / baseline:5.2f}x raw" if baseline else ""
    print(
        f"{name:<28} {rps:8.0f} req/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms{ratio}"
    )


async def raw_baseline(dsn: str, n: int, clients: int) -> tuple[float, list[float]]:
    setup = await asyncpg.connect(dsn)
    await setup.execute(RAW_SCHEMA)
    await setup.execute(
        "INSERT INTO acct VALUES ('a', 1000000000000, 0); INSERT INTO wf VALUES ('w', 3)"
    )
    await setup.execute("ANALYZE")
    await setup.close()
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)

    async def one(i: int) -> None:
        run = uuid.uuid4().hex
        async with pool.acquire() as conn, conn.transaction():
            price = await conn.fetchval("SELECT price FROM wf WHERE id = 'w'")
            await conn.execute("INSERT INTO run VALUES ($1, 'a', 'w', $2, $3)", run, str(i), price)
            await conn.execute(
                "UPDATE acct SET available = available - $1, frozen = frozen + $1 "
                "WHERE id = 'a' AND available >= $1",
                price,
            )
            await conn.execute("INSERT INTO hold VALUES ($1, $1, $2)", run, price)
            await conn.execute("INSERT INTO entry VALUES ($1, $1, $2)", run, price)
            await conn.execute("INSERT INTO job VALUES ($1, $1, 'todo')", run)

    try:
        return await _timed(n, clients, one)
    finally:
        await pool.close()


async def wfrun_paths(
    url: str, n: int, clients: int, data_dir: Path
) -> dict[str, tuple[float, list[float]]]:
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        secret_key="bench",
        seed_demo=False,
        worker=WorkerSettings(),
    )
    rt = await build_runtime(settings)
    owner = await operator(rt)
    workflow_id = (await publish_demo(rt, owner)).workflow_id
    alice = await customer(rt, balance="1000000")
    image = data_uri(png_bytes(8, 8))
    async with rt.db.transaction(write=True) as conn:
        await conn.exec_driver_sql("ANALYZE")
    principal = Principal(alice.account_id, "key_bench", "bench")

    async def service(i: int) -> None:
        request = runs.RunRequest(workflow_id, None, {"n1_image": image}, idempotency_key=f"s{i}")
        await runs.submit_run(rt.db, principal, request, rt.policy)

    results = {"wfrun submit (service)": await _timed(n, clients, service)}
    async with (
        start_server(rt) as live,
        httpx.AsyncClient(
            base_url=live.api_url,
            headers=alice.headers,
            limits=httpx.Limits(max_connections=clients),
        ) as http,
    ):

        async def over_http(i: int) -> None:
            body = {
                "workflow_id": workflow_id,
                "idempotency_key": f"h{i}",
                "inputs": {"n1_image": image},
            }
            response = await http.post("/workflow/run/submit", json=body)
            assert response.status_code == 200, response.text

        results["wfrun submit (HTTP)"] = await _timed(n, clients, over_http)
    await rt.close()
    return results


async def main(n: int, clients: int) -> None:
    name = f"wfrun_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}_raw"')
    await admin.close()
    await create_pg_database(name)
    try:
        raw_rps, raw_lat = await raw_baseline(pg_url(f"{name}_raw"), n, clients)
        with tempfile.TemporaryDirectory() as tmp:
            measured = await wfrun_paths(pg_url(name), n, clients, Path(tmp))
        print(f"{n} submits, {clients} concurrent clients, PostgreSQL on 127.0.0.1")
        _report("raw asyncpg transaction", raw_rps, raw_lat, None)
        for label, (rps, lat) in measured.items():
            _report(label, rps, lat, raw_rps)
    finally:
        await drop_pg_database(name)
        await drop_pg_database(f"{name}_raw")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.clients))
