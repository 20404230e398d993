"""A worker in another process produces the events an API process streams (issue 12), on
SQLite (the API process's one ``StreamPoller``) and PostgreSQL (``LISTEN wfrun_stream``), with
the waiters' safety-net poll switched off so that only those can wake the stream: real
``wfrun serve --no-worker`` and ``wfrun worker`` processes on loopback, the client reading the
stream over HTTP while the run happens."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import httpx
import pytest

from tests.chaos.harness import chaos_settings, cluster, submit_acknowledged
from tests.support.sse import Event, parse_sync

pytestmark = pytest.mark.slow


def test_a_worker_in_another_process_feeds_the_api_stream(fresh_url: str, tmp_path: Path):
    settings = chaos_settings(fresh_url, tmp_path / "data")
    # Nothing but a wake-up (NOTIFY, or SQLite's poller) may deliver: no safety-net poll and
    # no keepalive, so a stream that is never woken fails the read timeout.
    settings.live.fallback_poll_seconds = 3600
    settings.live.keepalive_seconds = 3600
    with cluster(settings, tmp_path) as group:
        _, api = group.serve("api", "--no-worker")
        who = group.provision(seconds=0.3)
        with httpx.Client(base_url=api, timeout=30) as http:
            (run_id,) = submit_acknowledged(http, who, ["across"])
            headers = {"Authorization": f"Bearer {who.key}"}
            params = {"run_order_id": run_id}
            with http.stream("GET", "/workflow/run/events", params=params, headers=headers) as r:
                assert r.status_code == 200
                items = (i for i in parse_sync(r.iter_lines()) if isinstance(i, Event))
                first = next(items)
                assert (first.event, first.data["run_status"]) == ("status", "queued")
                group.worker("worker")  # only now does anything run the run
                events = [first, *items]  # until the server ends the stream after done
    statuses = [e.data["run_status"] for e in events if e.event == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    names = [e.event for e in events]
    assert "progress" in names
    assert names[-2:] == ["output", "done"]
    assert events[-1].data["run_order_id"] == run_id
    ids = [e.id for e in events]
    assert ids == sorted(set(ids))


def test_sigterm_ends_open_streams_and_serve_exits(fresh_url: str, tmp_path: Path):
    settings = chaos_settings(fresh_url, tmp_path / "data")
    with cluster(settings, tmp_path) as group:
        proc, api = group.serve("api", "--no-worker")
        who = group.provision(seconds=0.1)
        headers = {"Authorization": f"Bearer {who.key}"}
        with (
            httpx.Client(base_url=api, timeout=30) as http,
            http.stream("GET", "/workflow/run/events", headers=headers) as response,
        ):
            assert response.status_code == 200
            proc.signal(signal.SIGTERM)
            with contextlib.suppress(httpx.RemoteProtocolError):  # ended, or cut: both end it
                for _ in response.iter_lines():
                    pass
        assert proc.popen.wait(timeout=30) == 0  # an open stream does not hold shutdown up
