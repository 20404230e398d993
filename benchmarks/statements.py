"""Statements per request: what each API call sends to the database, counted with SQLAlchemy's
``before_cursor_execute`` event on an in-process server (not timed; the suite's profile).

    .venv/bin/python -m benchmarks.statements [--db postgresql]

Counts every statement SQLAlchemy executes through a cursor (SELECT, INSERT, UPDATE, and on
SQLite the per-checkout PRAGMAs). Not counted: BEGIN and COMMIT (issued by the driver) and the
pool's pre-ping, so round trips are higher by two or three per transaction and checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from tests.conftest import make_settings
from tests.support.databases import create_pg_database, drop_pg_database, pg_url
from tests.support.factories import customer, operator
from tests.support.server import start_server

from benchmarks.stack import TRIVIAL
from wfrun.runtime import build_runtime
from wfrun.services import catalog

REPEATS = 20


@contextmanager
def counting(engine: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def hook(*args: Any) -> None:
        seen.append(str(args[2]).split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)


async def _per_request(rt: Any, calls: dict[str, Any]) -> dict[str, float]:
    out = {}
    async with (
        start_server(rt) as live,
        httpx.AsyncClient(base_url=live.api_url) as http,
    ):
        for name, call in calls.items():
            await call(http, -1)  # warm: caches, first connection
            with counting(rt.db.engine.sync_engine) as seen:
                for i in range(REPEATS):
                    (await call(http, i)).raise_for_status()
            out[name] = len(seen) / REPEATS
    return out


async def count(url: str, data_dir: Path) -> dict[str, float]:
    """Statements per submit, replay, ``balance/info`` and a queued run's ``run/execution``."""
    rt = await build_runtime(make_settings(url, data_dir))
    try:
        owner = await operator(rt)
        imported = await catalog.import_package(
            rt.db, owner_id=owner, document=TRIVIAL, publish=True
        )
        who = await customer(rt, balance="1000")
        body = {"workflow_id": imported.workflow_id, "inputs": {}}

        async def submit(http: httpx.AsyncClient, i: int) -> httpx.Response:
            key = {"idempotency_key": f"k{i}"}
            return await http.post("/workflow/run/submit", json=body | key, headers=who.headers)

        async def replay(http: httpx.AsyncClient, i: int) -> httpx.Response:
            return await submit(http, 0)

        async def balance(http: httpx.AsyncClient, i: int) -> httpx.Response:
            return await http.get("/balance/info", headers=who.headers)

        async def queued(http: httpx.AsyncClient, i: int) -> httpx.Response:
            run_id = (await replay(http, i)).json()["data"]["run_order_id"]
            path = f"/workflow/run/execution?run_order_id={run_id}"
            return await http.get(path, headers=who.headers)

        calls = {"submit": submit, "replay": replay, "balance": balance}
        counted = await _per_request(rt, calls | {"queued+replay": queued})
        counted["queued execution"] = counted.pop("queued+replay") - counted["replay"]
        return counted
    finally:
        await rt.close()


async def main(dialect: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        if dialect == "sqlite":
            return await count(f"sqlite:///{tmp}/wfrun.db", Path(tmp))
        name = f"wfrun_bench_{uuid.uuid4().hex[:8]}"
        await create_pg_database(name)
        try:
            return await count(pg_url(name), Path(tmp))
        finally:
            await drop_pg_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", default="postgresql")
    for name, per in asyncio.run(main(parser.parse_args().db)).items():
        print(f"{name:<10} {per:5.1f} statements per request")
