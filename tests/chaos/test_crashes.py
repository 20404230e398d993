"""Processes killed or frozen mid-run, on SQLite and PostgreSQL: every acknowledged run still
ends, settled exactly once, and a frozen worker's late writes are refused (fencing).

Real ``wfrun serve`` / ``wfrun worker`` processes on loopback; runs are a workflow that sleeps
(``TestSleep``) so they can be caught mid-node; leases are 2 s.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.chaos.harness import (
    Cluster,
    all_ended,
    assert_settled_once,
    chaos_settings,
    cluster,
    states,
    stop_outside_a_transaction,
    submit_acknowledged,
)
from tests.support.waiting import until_sync

pytestmark = pytest.mark.slow


def _mid_node(group: Cluster, run_ids: list[str], worker_id: str | None = None) -> list[str]:
    """The runs now inside their sleeping node (optionally: on that worker)."""
    current = states(group.settings, run_ids)
    return [
        run_id
        for run_id, state in current.items()
        if state.status == "running"
        and state.node_id == "2"
        and (worker_id is None or state.worker_id == worker_id)
    ]


def _finish(group: Cluster, run_ids: list[str], caught: list[str]) -> None:
    """All runs end, settled once; the ones caught mid-run were re-claimed (attempt 2)."""
    ended = until_sync(
        lambda: all_ended(group.settings, run_ids), what="every run to end", timeout=60
    )
    assert_settled_once(ended, run_ids)
    assert all(ended[run_id].attempt == 2 for run_id in caught), ended
    group.ledger_check()


def test_serve_killed_mid_runs_and_restarted(fresh_url: str, tmp_path: Path):
    """(a) SIGKILL ``wfrun serve`` (API + embedded worker) while runs execute; start it again:
    every acknowledged run ends and is settled exactly once."""
    with cluster(chaos_settings(fresh_url, tmp_path / "data"), tmp_path) as group:
        who = group.provision(seconds=1.5)
        serve, url = group.serve("serve-1")
        with httpx.Client(base_url=url, timeout=10) as http:
            run_ids = submit_acknowledged(http, who, [f"a{i}" for i in range(4)])
        caught = until_sync(lambda: _mid_node(group, run_ids), what="runs mid-node")
        serve.kill()
        group.serve("serve-2")
        _finish(group, run_ids, caught)


def test_worker_killed_mid_runs_is_replaced_after_the_lease(fresh_url: str, tmp_path: Path):
    """(b) SIGKILL a ``wfrun worker`` while it runs; the worker embedded in ``wfrun serve``
    re-claims its runs once their leases lapse and finishes them."""
    with cluster(chaos_settings(fresh_url, tmp_path / "data"), tmp_path) as group:
        who = group.provision(seconds=1.5)
        doomed = group.start("worker-doomed", "worker")
        _, url = group.serve("serve")
        doomed_id = group.worker_id(doomed)
        with httpx.Client(base_url=url, timeout=10) as http:
            run_ids = submit_acknowledged(http, who, [f"b{i}" for i in range(4)])
        caught = until_sync(lambda: _mid_node(group, run_ids, doomed_id), what="the worker mid-run")
        doomed.kill()
        _finish(group, run_ids, caught)


def test_stopped_worker_is_fenced_out_after_its_lease(fresh_url: str, tmp_path: Path):
    """(c) SIGSTOP a worker mid-run past its lease; another worker takes the run over and
    finishes it; SIGCONT: the stopped worker's late writes are refused, the run is settled
    exactly once by its new owner."""
    settings = chaos_settings(fresh_url, tmp_path / "data", concurrency=1)
    with cluster(settings, tmp_path) as group:
        who = group.provision(seconds=2.0)
        zombie = group.start("worker-zombie", "worker")
        zombie_id = group.worker_id(zombie)
        _, url = group.serve("serve", "--no-worker")
        with httpx.Client(base_url=url, timeout=10) as http:
            [run_id] = submit_acknowledged(http, who, ["c0"])
        until_sync(lambda: _mid_node(group, [run_id], zombie_id), what="the zombie mid-run")
        stop_outside_a_transaction(zombie, group.settings)
        assert _mid_node(group, [run_id], zombie_id), "the zombie finished before it stopped"
        group.worker("worker-new")
        ended = until_sync(
            lambda: all_ended(group.settings, [run_id]), what="the new owner to finish"
        )
        zombie.signal(signal.SIGCONT)
        zombie.wait_for(rf"dropping run {run_id}: attempt 1 of {run_id} was superseded", 30)
        assert states(group.settings, [run_id]) == ended  # the late attempt changed nothing
        assert_settled_once(ended, [run_id])
        assert ended[run_id].attempt == 2
        outputs = settings.data_dir / "files" / "runs" / run_id
        assert (outputs / "2").is_dir()
        assert not (outputs / "1").exists()  # the fenced attempt kept no outputs
        group.ledger_check()
