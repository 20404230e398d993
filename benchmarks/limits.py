"""The limit each wfrun figure is compared with: the same statements without wfrun.

PostgreSQL: ``pgbench -M prepared`` (``/usr/bin/pgbench``) on the benchmark's own seeded
database, at the same client counts. SQLite: the same transaction in a raw ``sqlite3`` process
(``python -m benchmarks.limits``), one connection (SQLite runs one writer at a time, so that is
its limit at every client count).

The submit transaction mirrors wfrun's (``services/runs.py``: ``_resolve``, ``insert_run``,
``billing.freeze``, ``broker.enqueue``, ``publish_change``): the workflow SELECT, the run
INSERT, the account's freeze UPDATE, then the freeze, ledger entry, postings, job and outbox
INSERTs — each row cloned from a queued run wfrun wrote (``seed.stash``), one client per account.
Reads: the API key lookup and the account row (``balance/info``), the key lookup and the run row
(``run/execution`` of a finished run).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from benchmarks.seed import STASHED, clone_sql, columns

PGBENCH = "/usr/bin/pgbench"
RUN = "'pg' || CAST({c} AS text) || '_' || CAST({r} AS text)"
ACCOUNT = "'pga_' || CAST({c} AS text)"


def _overrides(table: str) -> dict[str, str]:
    owned = {"account_id": ACCOUNT}
    if table == "runs":
        ids = ("id", "idempotency_key", "task_id", "prompt_id", "billing_run_id")
        return {**dict.fromkeys(ids, RUN), **owned}
    if table == "ledger_postings":
        return {"entry_id": f"{RUN} || '_' || e.kind", **owned}
    if table == "ledger_entries":
        return {"id": f"{RUN} || '_' || tpl.kind", "run_id": RUN, **owned}
    if table == "outbox_events":
        return {"run_id": RUN, **owned}
    return {"id": f"{RUN} || '_{table[0]}'", "run_id": RUN, **owned}


async def submit_statements(conn: AsyncConnection, workflow_id: str, quote: int) -> list[str]:
    """The submit transaction's statements, ``{c}`` the client and ``{r}`` a unique number."""
    workflow = (
        "SELECT w.*, v.* FROM workflows AS w JOIN revisions AS v ON v.id = "
        f"w.published_revision_id WHERE w.id = '{workflow_id}'"
    )
    statements = [workflow]
    for table in STASHED:
        where = ""
        if table == "ledger_postings":
            where = ", bench_tpl_ledger_entries AS e WHERE e.id = tpl.entry_id"
        names = await columns(conn, table)
        statements.append(clone_sql(table, names, _overrides(table), f"bench_tpl_{table}", where))
        if table == "runs":
            statements.append(
                f"UPDATE accounts SET available = available - {quote}, frozen = frozen + "
                f"{quote} WHERE id = {ACCOUNT} AND available >= {quote}"
            )
    return statements


def read_statements(key_hash: str, account_id: str, run_id: str) -> dict[str, list[str]]:
    key = f"SELECT * FROM api_keys WHERE key_hash = '{key_hash}'"
    return {
        "balance": [key, f"SELECT * FROM accounts WHERE id = '{account_id}'"],
        "execution": [key, f"SELECT * FROM runs WHERE id = '{run_id}'"],
    }


def pgbench(
    dsn_parts: dict[str, str], statements: list[str], clients: int, seconds: float, tmp: Path
) -> float:
    """Transactions per second of ``statements`` (BEGIN … END when more than reads)."""
    body = [s.replace("{c}", ":client_id").replace("{r}", ":r") + ";" for s in statements]
    script = tmp / f"pgbench_{clients}_{len(statements)}.sql"
    script.write_text("\n".join(["\\set r random(1, 1000000000000)", "BEGIN;", *body, "END;"]))
    argv = [PGBENCH, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2))]
    argv += ["-T", str(max(1, round(seconds))), "-f", str(script)]
    argv += ["-h", dsn_parts["host"], "-p", dsn_parts["port"], "-U", dsn_parts["user"]]
    done = subprocess.run([*argv, dsn_parts["dbname"]], capture_output=True, text=True, check=False)
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed: {done.stdout}\n{done.stderr}")
    return float(found.group(1))


def sqlite_anchor(path: Path, statements: list[str], seconds: float, write: bool) -> float:
    """Runs ``python -m benchmarks.limits`` (a raw sqlite3 process); transactions per second."""
    plan = {"path": str(path), "statements": statements, "seconds": seconds, "write": write}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.limits", json.dumps(plan)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout)["tps"])


def _loop(plan: dict[str, Any]) -> float:
    db = sqlite3.connect(plan["path"], isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    stop, n = time.perf_counter() + plan["seconds"], 0
    began = time.perf_counter()
    while time.perf_counter() < stop:
        db.execute("BEGIN IMMEDIATE" if plan["write"] else "BEGIN")
        for statement in plan["statements"]:
            db.execute(statement.format(c=0, r=n)).fetchall()
        db.execute("COMMIT")
        n += 1
    return n / (time.perf_counter() - began)


if __name__ == "__main__":
    print(json.dumps({"tps": _loop(json.loads(sys.argv[1]))}))
