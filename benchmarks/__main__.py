"""wfrun's benchmark suite: one table, PostgreSQL and SQLite, every figure beside its limit.

    python -m benchmarks [--quick | --smoke] [--db postgresql,sqlite] [--json] [--only drain]
    ./dev bench [same options]

Loopback only. Per database it creates a scratch database (PostgreSQL on 127.0.0.1:5432,
``WFRUN_TEST_PG_DSN`` overrides the admin DSN; SQLite in a temp dir), migrates it with
``wfrun db upgrade``, seeds it with bulk SQL (full: 200k runs over 2,000 accounts with their
freezes and ledger rows, and 1M runs owned by one account; on SQLite 50k + 200k; ANALYZE), starts ``wfrun serve
--no-worker`` and, where needed, ``wfrun worker`` as subprocesses, and measures from a separate
load-generator process (``benchmarks.loadgen``). The limits run on the same database:
``pgbench -M prepared`` with a submit-shaped transaction, or a raw sqlite3 process. Everything
it started is stopped and dropped at the end. Full run ≈ 10 min on 2 cores; ``--quick`` ≈ 90 s
(20k runs); ``--smoke`` tiny counts, for the test suite (figures meaningless).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from tests.support.databases import PG_ADMIN_DSN, create_pg_database, drop_pg_database, pg_url

from benchmarks import table
from benchmarks.runner import MODES, Mode, bench, bench_drain


def _one(dialect: str, mode: Mode, only: str | None) -> dict[str, Any]:
    measure = bench_drain if only == "drain" else bench
    with tempfile.TemporaryDirectory(prefix="wfrun-bench-") as tmp:
        if dialect == "sqlite":
            return measure(f"sqlite:///{tmp}/wfrun.db", Path(tmp), mode)
        name = f"wfrun_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(create_pg_database(name))
        try:
            return measure(pg_url(name), Path(tmp), mode)
        finally:
            asyncio.run(drop_pg_database(name))


async def _pg_version() -> str:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def machine(load_before: float) -> str:
    """Cores, PostgreSQL version and load average (1 min) before and after the run."""
    return (
        f"{os.cpu_count()} cores, PostgreSQL {asyncio.run(_pg_version())}, load average "
        f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short phases, 20k runs (~90 s)")
    size.add_argument("--smoke", action="store_true", help="tiny counts, for the test suite")
    parser.add_argument("--db", default="postgresql,sqlite", help="comma-separated databases")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--only",
        choices=["drain"],
        help="drain: only the submits (accept rate) and the worker's drain, nothing seeded",
    )
    args = parser.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    began, load = time.perf_counter(), os.getloadavg()[0]
    results: dict[str, Any] = {}
    failed = []
    for dialect in args.db.split(","):
        try:
            results[dialect] = _one(dialect, mode, args.only)
        except Exception:  # noqa: BLE001 - the other database's figures are still printed
            traceback.print_exc()
            failed.append(dialect)
    results["machine"] = machine(load)
    rows = [row for name, r in results.items() if name != "machine" for row in table.rows(name, r)]
    if args.json:
        print(json.dumps({"results": results, "rows": [row.__dict__ for row in rows]}, indent=1))
        sys.exit(f"failed: {', '.join(failed)}" if failed else 0)
    took = time.perf_counter() - began
    print(f"wfrun benchmark, {mode.name} mode, {took:.0f} s; {results.pop('machine')}; seeded:")
    for dialect, r in results.items():
        n = r["counts"]
        print(
            f"- {dialect}: {n['runs_many']:,} runs over {n['accounts']:,} accounts + "
            f"{n['runs_big']:,} runs in one account ({r['seed_seconds']:.0f} s)"
        )
    print()
    print(table.markdown(rows))
    sys.stdout.flush()
    if failed:
        sys.exit(f"failed (traceback above): {', '.join(failed)}")


if __name__ == "__main__":
    main()
