"""SIGTERM to real ``wfrun worker`` and ``wfrun serve`` processes (issue 11), on SQLite and
PostgreSQL: the first signal stops claiming at once and logs it; the second hands the runs in
flight back and the process exits 0; another worker takes the handed-back runs (attempt 2) and
nothing is lost: every run ends through a cancel, its freeze resolved once, the ledger clean.

Runs sleep 60 s in one node, so they are certainly in flight at both signals.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.chaos.harness import (
    Cluster,
    Customer,
    Proc,
    all_ended,
    chaos_settings,
    cluster,
    states,
    submit_acknowledged,
)
from tests.support.waiting import until_sync

pytestmark = pytest.mark.slow


def _target(group: Cluster, kind: str) -> Proc:
    if kind == "worker":
        proc, _ = group.worker("target")
        return proc
    proc, _ = group.serve("target")  # its embedded worker
    return proc


def _running(group: Cluster, run_ids: list[str], attempt: int) -> list[str]:
    current = states(group.settings, run_ids)
    return [
        run_id
        for run_id, state in current.items()
        if state.status == "running"
        and state.node_id == "2"
        and state.attempt == attempt
        and state.worker_id is not None
    ]


def _both_running(group: Cluster, run_ids: list[str]) -> list[str] | None:
    """The two runs the target is running (its concurrency), once both are mid-node."""
    running = _running(group, run_ids, 1)
    return running if len(running) == 2 else None


def _cancel_all(url: str, who: Customer, run_ids: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for run_id in run_ids:
            response = http.post(
                "/workflow/run/cancel",
                json={"run_order_id": run_id},
                headers={"Authorization": f"Bearer {who.key}"},
            )
            assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", ["worker", "serve"])
def test_sigterm_drains_then_a_second_sigterm_hands_runs_back(fresh_url, tmp_path: Path, kind):
    settings = chaos_settings(fresh_url, tmp_path / "data", drain_seconds=600)
    with cluster(settings, tmp_path) as group:
        who = group.provision(seconds=60)
        _, url = group.serve("api", "--no-worker")
        target = _target(group, kind)
        with httpx.Client(base_url=url, timeout=10) as http:
            run_ids = submit_acknowledged(http, who, ["a", "b", "c"])
        busy = until_sync(lambda: _both_running(group, run_ids), what="two runs mid-node")
        [waiting] = set(run_ids) - set(busy)
        target.signal(signal.SIGTERM)
        target.wait_for(r"stopping: claiming nothing more; waiting up to 600 s for 2 run\(s\)")
        target.signal(signal.SIGTERM)
        assert target.popen.wait(timeout=60) == 0, target.output()[-3000:]
        assert "handed back 2 unfinished run(s)" in target.output()
        after = states(group.settings, run_ids)
        assert {r: (after[r].status, after[r].worker_id) for r in run_ids} == {
            busy[0]: ("running", None),
            busy[1]: ("running", None),
            waiting: ("queued", None),
        }
        group.worker("next")
        until_sync(lambda: sorted(_running(group, busy, 2)) == sorted(busy), what="the next worker")
        # the waiting run first: a cancelled busy run frees a slot the worker would fill with it
        _cancel_all(url, who, [waiting, *busy])
        ended = until_sync(lambda: all_ended(group.settings, run_ids), what="every run to end")
        assert {r: s.status for r, s in ended.items()} == dict.fromkeys(run_ids, "cancelled")
        assert {r: ended[r].entries for r in busy} == dict.fromkeys(busy, ("freeze", "settle"))
        assert ended[waiting].entries == ("freeze", "release")
        group.ledger_check()
