"""Real ``wfrun`` processes for chaos tests: start them, read their banners, signal them; set a
customer up through the operator CLI; drive and check runs over HTTP and in the database.

Everything listens on loopback; every wait polls a condition against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from sqlalchemy import select, text

from tests.support.factories import sleepy_package
from tests.support.waiting import until_sync
from wfrun.cli.main import cli
from wfrun.config import Settings, WorkerSettings
from wfrun.db.database import Database
from wfrun.db.schema import freezes, jobs, ledger_entries, runs

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
LEASE_SECONDS = 2.0


@dataclass
class Proc:
    """One ``python -m wfrun …`` process; its output goes to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, seconds: float = 60.0) -> re.Match[str]:
        def seen() -> re.Match[str] | None:
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.output()[-4000:]}")
            return re.search(pattern, self.output())

        return until_sync(
            seen, what=f"{pattern!r} from {self.name}", timeout=seconds, interval=0.05
        )

    def signal(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL (a stopped process dies too) and reap it."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)


@dataclass
class Customer:
    account_id: str
    key: str
    workflow_id: str


@dataclass
class Cluster:
    """The processes of one test, sharing one database and data directory."""

    settings: Settings
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        worker = self.settings.worker
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("WFRUN_")},
            "WFRUN_DATABASE_URL": self.settings.resolved_database_url,
            "WFRUN_DATA_DIR": str(self.settings.data_dir),
            "WFRUN_SECRET_KEY": "test-secret",
            "WFRUN_SEED_DEMO": "false",
            "WFRUN_WORKER__LEASE_SECONDS": str(worker.lease_seconds),
            "WFRUN_WORKER__POLL_INTERVAL": str(worker.poll_interval),
            "WFRUN_WORKER__CONCURRENCY": str(worker.concurrency),
            "WFRUN_WORKER__DRAIN_SECONDS": str(worker.drain_seconds),
            **{f"WFRUN_LIVE__{k.upper()}": str(v) for k, v in self.settings.live},
        }

    def start(self, name: str, *args: str) -> Proc:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "wfrun", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def serve(self, name: str, *args: str) -> tuple[Proc, str]:
        """``wfrun serve --port 0 …``: the process and its API base URL, once it listens."""
        proc = self.start(name, "serve", "--port", "0", *args)
        return proc, self.api_url(proc)

    def api_url(self, proc: Proc) -> str:
        found = proc.wait_for(r"serving (http://127\.0\.0\.1:\d+/api/open/v2)")
        return found.group(1)

    def worker(self, name: str, *args: str) -> tuple[Proc, str]:
        """``wfrun worker …``: the process and its worker id, once it announced itself."""
        proc = self.start(name, "worker", *args)
        return proc, self.worker_id(proc)

    def worker_id(self, proc: Proc) -> str:
        return proc.wait_for(r"worker (worker_[0-9a-f]+) on ").group(1)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.signal(signal.SIGCONT)
                proc.kill()

    def cli(self, *args: str, code: int = 0) -> Any:
        """Run an admin command (in this process) and return its ``--json`` output."""
        result = CliRunner().invoke(cli, list(args), obj=self.settings, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args else result.output

    def provision(self, *, seconds: float) -> Customer:
        """A customer with credit and a key, and a published workflow whose runs sleep (on a
        database migrated first: admin commands never migrate)."""
        self.cli("db", "upgrade", "--json")
        account = self.cli("accounts", "create", "chaos", "--json")["id"]
        self.cli("accounts", "topup", account, "100", "--json")
        key = self.cli("keys", "create", account, "--name", "chaos", "--json")["api_key"]
        package = self.tmp / "sleepy.json"
        package.write_text(json.dumps(sleepy_package(seconds=seconds)))
        imported = self.cli(
            "workflows", "import", str(package), "--owner", account, "--publish", "--json"
        )
        return Customer(account, key, imported["workflow_id"])

    def ledger_check(self) -> None:
        output = self.cli("ledger", "check")
        assert "ledger balances" in output, output


def chaos_settings(database_url: str, data_dir: Path, **worker: Any) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret",
        seed_demo=False,
        worker=WorkerSettings(
            **{"lease_seconds": LEASE_SECONDS, "poll_interval": 0.05, "concurrency": 2} | worker
        ),
    )


@contextmanager
def cluster(settings: Settings, tmp: Path) -> Iterator[Cluster]:
    group = Cluster(settings, tmp)
    try:
        yield group
    finally:
        group.stop_all()


# --- HTTP -----------------------------------------------------------------------------


def submit(http: httpx.Client, who: Customer, key: str) -> httpx.Response:
    body = {"workflow_id": who.workflow_id, "idempotency_key": key, "inputs": {}}
    return http.post(
        "/workflow/run/submit", json=body, headers={"Authorization": f"Bearer {who.key}"}
    )


def submit_acknowledged(http: httpx.Client, who: Customer, keys: list[str]) -> list[str]:
    ids = []
    for key in keys:
        response = submit(http, who, key)
        assert response.status_code == 200, response.text
        ids.append(response.json()["data"]["run_order_id"])
    return ids


# --- database -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunState:
    status: str
    attempt: int
    worker_id: str | None
    node_id: str | None
    freeze: str
    entries: tuple[str, ...]


def states(settings: Settings, run_ids: list[str]) -> dict[str, RunState]:
    """Each run's status, attempt, current node, job owner, freeze and ledger entry kinds."""
    return asyncio.run(_states(settings.resolved_database_url, run_ids))


async def _states(url: str, run_ids: list[str]) -> dict[str, RunState]:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as conn:
            rows = (
                await conn.execute(
                    select(runs, jobs.c.worker_id, freezes.c.status.label("freeze"))
                    .join(jobs, jobs.c.run_id == runs.c.id)
                    .join(freezes, freezes.c.run_id == runs.c.id)
                    .where(runs.c.id.in_(run_ids))
                )
            ).all()
            kinds = (
                await conn.execute(
                    select(ledger_entries.c.run_id, ledger_entries.c.kind).where(
                        ledger_entries.c.run_id.in_(run_ids)
                    )
                )
            ).all()
    finally:
        await db.dispose()
    return {row.id: _state(row, kinds) for row in rows}


def _state(row: Any, kinds: Sequence[Any]) -> RunState:
    snapshot = row.progress_snapshot or {}
    return RunState(
        status=row.status,
        attempt=row.attempt,
        worker_id=row.worker_id,
        node_id=snapshot.get("node_id"),
        freeze=row.freeze,
        entries=tuple(sorted(k.kind for k in kinds if k.run_id == row.id)),
    )


def all_ended(settings: Settings, run_ids: list[str]) -> dict[str, RunState] | None:
    current = states(settings, run_ids)
    return current if all(s.status in TERMINAL for s in current.values()) else None


def assert_settled_once(ended: dict[str, RunState], run_ids: list[str]) -> None:
    """Every run succeeded, its freeze settled once: one freeze entry and one settle entry."""
    assert sorted(ended) == sorted(run_ids)
    wrong = {
        run_id: state
        for run_id, state in ended.items()
        if (state.status, state.freeze, state.entries)
        != ("succeeded", "settled", ("freeze", "settle"))
    }
    assert wrong == {}, wrong


# --- freezing a process without it holding the database -------------------------------


def holds_no_transaction(settings: Settings) -> bool:
    """True when no other connection is inside a transaction that could block a worker: on
    SQLite nobody holds the write lock; on PostgreSQL every other backend of the database is
    idle (a stopped client's open transaction shows as ``idle in transaction``)."""
    return asyncio.run(_holds_no_transaction(settings.resolved_database_url))


async def _holds_no_transaction(url: str) -> bool:
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split("///", 1)[1]
        probe = sqlite3.connect(path, timeout=0.1, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"
    )
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as conn:
            busy: int = (await conn.execute(query)).scalar_one()
        return busy == 0
    finally:
        await db.dispose()


def stop_outside_a_transaction(proc: Proc, settings: Settings) -> None:
    """SIGSTOP ``proc`` at a moment it holds no transaction open (a process frozen inside
    one would block every other worker until it is continued: a real hazard, but not the one
    under test). Bounded: a few tries, each waiting for the transaction to end first."""
    for _ in range(10):
        until_sync(
            lambda: holds_no_transaction(settings), what=f"{proc.name} outside a transaction"
        )
        proc.signal(signal.SIGSTOP)
        if holds_no_transaction(settings):
            return
        proc.signal(signal.SIGCONT)
    raise AssertionError(f"{proc.name} was inside a transaction at every SIGSTOP")
