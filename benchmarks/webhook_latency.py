"""Webhook latency: a run's state change → the signed webhook at a receiver, p50/p99.

    .venv/bin/python -m benchmarks.webhook_latency [--runs 40] [--pg] [--poll 0.2]

A ``wfrun serve`` subprocess (API + embedded worker, local engine, runs that end at once) sends
to a receiver in this process on loopback (allow-listed with ``WFRUN_WEBHOOKS__ALLOW_NETWORKS``).
Runs are submitted one at a time; each waits for its three changes (queued, started, succeeded)
to arrive. Latency = arrival time − the body's ``timestamp`` (when the change was written, in
the transaction that made it; ms precision). Same host clock on both ends. ``--poll`` is
``webhooks.poll_interval``, the delivery loop's look at the outbox: it dominates the result
until the loop is woken by the outbox instead of polling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from tests.chaos.harness import Cluster, chaos_settings
from tests.support.databases import create_pg_database, drop_pg_database, pg_url
from tests.support.receiver import Received, Receiver, running_receiver
from tests.support.waiting import until_sync


@dataclass
class BenchCluster(Cluster):
    poll: float = 0.2

    @property
    def env(self) -> dict[str, str]:
        return super().env | {
            "WFRUN_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.0/8"]',
            "WFRUN_WEBHOOKS__POLL_INTERVAL": str(self.poll),
        }


def _latencies(receiver: Receiver) -> dict[str, list[float]]:
    by_type: dict[str, list[float]] = {}
    for item in receiver.received:
        body = json.loads(item.body)
        changed = datetime.fromisoformat(body["timestamp"]).timestamp()
        by_type.setdefault(body["type"], []).append((item.at - changed) * 1000)
    return by_type


def _line(name: str, values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"{name:<15} n={len(values):<4} p50 {q[49]:7.1f} ms   p99 {q[98]:7.1f} ms"


def measure(url: str, tmp: Path, runs: int, poll: float) -> dict[str, list[float]]:
    group = BenchCluster(chaos_settings(url, tmp / "data"), tmp, poll=poll)
    try:
        who = group.provision(seconds=0)
        _, api = group.serve("serve")
        headers = {"Authorization": f"Bearer {who.key}"}
        kept: list[Received] = []
        with running_receiver() as receiver, httpx.Client(base_url=api, timeout=30) as http:
            body = {"url": receiver.url, "events": ["run.queued", "run.started", "run.succeeded"]}
            assert http.post("/webhooks/endpoints", json=body, headers=headers).status_code == 200
            for i in range(runs + 3):
                submit = {"workflow_id": who.workflow_id, "idempotency_key": f"b{i}", "inputs": {}}
                assert http.post("/workflow/run/submit", json=submit, headers=headers).is_success
                until_sync(lambda: len(receiver.received) >= 3, what=f"run {i}'s changes")
                if i >= 3:  # the first three are warm-up
                    kept.extend(receiver.received)
                receiver.received.clear()
                time.sleep(0.05)  # de-phase from the poll tick
            receiver.received[:] = kept
            return _latencies(receiver)
    finally:
        group.stop_all()


async def _pg() -> tuple[str, str]:
    name = f"wfrun_bench_{uuid.uuid4().hex[:8]}"
    await create_pg_database(name)
    return name, pg_url(name)


def main(runs: int, use_pg: bool, poll: float) -> None:
    name, url = asyncio.run(_pg()) if use_pg else ("", "")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
            by_type = measure(url, Path(tmp), runs, poll)
    finally:
        if use_pg:
            asyncio.run(drop_pg_database(name))
    every = [v for values in by_type.values() for v in values]
    dialect = "PostgreSQL" if use_pg else "SQLite"
    print(f"state change → webhook receiver, {runs} runs, {dialect}, poll {poll:g} s")
    for name_, values in sorted(by_type.items()):
        print(_line(name_, values))
    print(_line("all", every))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--poll", type=float, default=0.2, help="webhooks.poll_interval")
    args = parser.parse_args()
    main(args.runs, args.pg, args.poll)
