"""PostgreSQL stopped under load and started again, with ``wfrun serve`` left running: while it
is down the API answers 503 (never 500, never a dropped connection); afterwards it serves again
without a restart; every acknowledged submit exists and ends, settled once; the books balance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.chaos.harness import (
    Customer,
    all_ended,
    assert_settled_once,
    chaos_settings,
    cluster,
    submit,
)
from tests.chaos.postgres import ThrowawayPostgres, throwaway_postgres
from tests.support.waiting import until_sync

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    server = throwaway_postgres()
    try:
        yield server
    finally:
        server.remove()


@dataclass
class Load:
    """Submits at a steady pace from a thread (bounded in count), recording every answer."""

    api_url: str
    who: Customer
    pace: float = 0.02
    limit: int = 3000
    statuses: list[int] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def count(self, status: int, since: int = 0) -> int:
        return self.statuses[since:].count(status)

    def run(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=30) as http:
            for index in range(self.limit):
                if self._stop.is_set():
                    return
                started = time.monotonic()
                self._one(http, f"load-{index}")
                self._stop.wait(max(0.0, self.pace - (time.monotonic() - started)))

    def _one(self, http: httpx.Client, key: str) -> None:
        try:
            response = submit(http, self.who, key)
        except httpx.TransportError as exc:
            self.statuses.append(0)
            self.problems.append(f"{key}: {type(exc).__name__}: {exc}")
            return
        self.statuses.append(response.status_code)
        if response.status_code == 200:
            self.acknowledged.append(response.json()["data"]["run_order_id"])
        elif response.status_code != 503:
            self.problems.append(f"{key}: {response.status_code} {response.text}")
        else:
            error = response.json()["data"]["error"]
            if error["engine_code"] != "SERVICE_UNAVAILABLE":
                self.problems.append(f"{key}: 503 {error}")


def _outage(postgres: ThrowawayPostgres, load: Load) -> None:
    """Steady load; PostgreSQL down for at least 2 s (and several 503s); up again until the
    server has acknowledged submits again."""
    until_sync(lambda: load.count(200) >= 5, what="the load to get going")
    postgres.stop()
    down_at, mark = time.monotonic(), len(load.statuses)
    until_sync(
        lambda: time.monotonic() - down_at >= 2 and load.count(503, mark) >= 3,
        what="503s while PostgreSQL is down",
    )
    postgres.start()
    mark = len(load.statuses)
    until_sync(lambda: load.count(200, mark) >= 5, what="submits accepted again after the restart")


def test_postgres_stopped_under_load_answers_503_then_recovers(
    postgres: ThrowawayPostgres, tmp_path: Path
):
    settings = chaos_settings(postgres.url, tmp_path / "data", concurrency=4)
    with cluster(settings, tmp_path) as group:
        who = group.provision(seconds=0.3)
        serve, url = group.serve("serve")
        load = Load(url, who)
        thread = threading.Thread(target=load.run, name="submit-load")
        thread.start()
        try:
            _outage(postgres, load)
        finally:
            load._stop.set()
            thread.join(timeout=60)
        assert load.problems == [], load.problems[:5]
        assert load.count(503) >= 3
        ended = until_sync(
            lambda: all_ended(settings, load.acknowledged), what="acknowledged runs", timeout=90
        )
        assert_settled_once(ended, load.acknowledged)
        group.ledger_check()
        assert serve.popen.poll() is None, "the server had to be restarted"
