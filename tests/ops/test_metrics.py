"""``/metrics``: Prometheus text that prometheus-client's own parser reads, whose values move
by exactly what a run does (submit → queued and frozen; completion → succeeded, settled,
dispatch and engine observed), HTTP requests by route template; a port of its own; a worker's
``--metrics-port``. Real servers on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.chaos.harness import chaos_settings, cluster, submit_acknowledged
from tests.support.api import info
from tests.support.factories import (
    customer,
    drain,
    operator,
    publish_package,
    sleepy_package,
)
from tests.support.uvicorn_runner import serve_on_loopback, stop_serving
from tests.support.waiting import until_sync
from wfrun.api.app import create_app
from wfrun.config import MetricsSettings
from wfrun.domain.lanes import lane_key
from wfrun.domain.money import parse_amount
from wfrun.runtime import Runtime

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SUBMIT = "/api/open/v2/workflow/run/submit"


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when absent (a labelled series appears with its first event)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(base_url: str) -> Samples:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(answer.text)


def cny(amount: str) -> float:
    return parse_amount(amount) / 100_000_000


async def test_metrics_move_by_exactly_one_run(runtime: Runtime, server, http):
    owner = await operator(runtime)
    workflow_id = await publish_package(
        runtime, owner, sleepy_package(seconds=0, price_per_second="0")
    )
    alice = await customer(runtime, balance="5")
    before = await scrape(server.base_url)
    assert value(before, "wfrun_metrics_database_up") == 1

    body = {"workflow_id": workflow_id, "idempotency_key": "m-1", "inputs": {}}
    submitted = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    assert submitted.status_code == 200, submitted.text
    run_id = submitted.json()["data"]["run_order_id"]
    queued = await scrape(server.base_url)
    assert value(queued, "wfrun_runs", status="queued", engine="local") == 1
    assert value(queued, "wfrun_queue_depth", lane=lane_key("local")) == 1
    assert value(queued, "wfrun_queue_oldest_age_seconds", lane=lane_key("local")) >= 0
    assert value(queued, "wfrun_money_frozen_cny") == cny("0.01")

    await drain(runtime)
    after = await scrape(server.base_url)
    final = (await info(http, alice, run_id))["final_amount"]
    assert final == "0.01000000"
    assert _deltas(before, after) == {
        "succeeded": 1,
        "queued": 0,
        "settled": cny(final),
        "frozen": 0,
        "submits": 1,
        "submit_timings": 1,
        "dispatches": 1,
        "engine_ok": 1,
        "engine_error": 0,
    }
    assert value(after, "wfrun_queue_depth", lane=lane_key("local")) == 0


def _deltas(before: Samples, after: Samples) -> dict[str, float]:
    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    return {
        "succeeded": delta("wfrun_runs", status="succeeded", engine="local"),
        "queued": delta("wfrun_runs", status="queued", engine="local"),
        "settled": delta("wfrun_money_settled_cny"),
        "frozen": delta("wfrun_money_frozen_cny"),
        "submits": delta("wfrun_http_requests_total", method="POST", route=SUBMIT, status="200"),
        "submit_timings": delta(
            "wfrun_http_request_duration_seconds_count", method="POST", route=SUBMIT
        ),
        "dispatches": delta("wfrun_run_dispatch_latency_seconds_count", engine="local"),
        "engine_ok": delta("wfrun_engine_duration_seconds_count", engine="local", outcome="ok"),
        "engine_error": delta(
            "wfrun_engine_duration_seconds_count", engine="local", outcome="error"
        ),
    }


async def test_requests_are_labelled_by_route_template_never_raw_path(runtime: Runtime, server):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        unsigned = [(await client.get(f"/files/{key}/x.png")).status_code for key in ("a1", "b2")]
        unknown = await client.get("/no/such/path-c3")
    assert (unsigned, unknown.status_code) == ([400, 400], 404)
    samples = await scrape(server.base_url)
    requests = {
        (dict(labels)["method"], dict(labels)["route"], dict(labels)["status"]): count
        for (name, labels), count in samples.items()
        if name == "wfrun_http_requests_total"
    }
    assert requests == {
        ("GET", "/files/{key}", "400"): 2,  # the OpenAPI path template
        ("GET", "unmatched", "404"): 1,
    }  # this scrape itself is counted once it has answered


async def test_metrics_port_of_its_own(runtime: Runtime):
    settings = runtime.settings.model_copy(update={"metrics": MetricsSettings(port=0)})
    app = create_app(settings, runtime=runtime)
    server, task, port = await serve_on_loopback(app, lifespan="on")
    try:
        metrics_url = f"http://127.0.0.1:{app.state.metrics_port}"
        samples = await scrape(metrics_url)
        assert value(samples, "wfrun_metrics_database_up") == 1
        async with httpx.AsyncClient(timeout=30) as client:
            main = await client.get(f"http://127.0.0.1:{port}/metrics")
            other = await client.get(f"{metrics_url}/healthz")
        assert main.status_code == 404
        assert main.json()["data"]["error"]["engine_code"] == "ENDPOINT_NOT_FOUND"
        assert other.status_code == 404
    finally:
        await stop_serving(server, task)


@pytest.mark.slow
def test_worker_serves_its_own_metrics(fresh_url: str, tmp_path: Path):
    settings = chaos_settings(fresh_url, tmp_path / "data")
    with cluster(settings, tmp_path) as group:
        who = group.provision(seconds=0)
        _, api = group.serve("api", "--no-worker")
        worker, _ = group.worker("worker", "--metrics-port", "0")
        found = worker.wait_for(r"worker metrics at (http://127\.0\.0\.1:\d+/metrics)")
        with httpx.Client(base_url=api, timeout=30) as http:
            submit_acknowledged(http, who, ["w-1"])
        samples = until_sync(
            lambda: _after_engine_run(found.group(1)), what="the worker's engine run", timeout=60
        )
    ran = value(samples, "wfrun_engine_duration_seconds_count", engine="local", outcome="ok")
    assert ran == 1
    assert value(samples, "wfrun_run_dispatch_latency_seconds_count", engine="local") == 1
    assert ("wfrun_metrics_database_up", frozenset()) not in samples  # the API serves those
    assert value(samples, "process_cpu_seconds_total") > 0


def _after_engine_run(url: str) -> Samples | None:
    samples = parse(httpx.get(url, timeout=30).text)
    done = value(samples, "wfrun_engine_duration_seconds_count", engine="local", outcome="ok")
    return samples if done else None


DOCS = Path(__file__).resolve().parents[2] / "docs"
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


async def test_docs_and_dashboard_name_only_served_metrics(runtime: Runtime, server):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        text = (await client.get("/metrics")).text
    served = {family.name for family in text_string_to_metric_families(text)}
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    in_dashboard = {_family(n) for e in exprs for n in re.findall(r"\bwfrun_[a-z_]+", e)}
    documented = {
        _family(n) for n in re.findall(r"`(wfrun_[a-z_]+)`", (DOCS / "operating.md").read_text())
    }
    ours = {n for n in served if n.startswith("wfrun_")}
    assert len(ours) == 15
    assert documented == ours  # every metric served is documented, and nothing else
    assert in_dashboard == ours  # and charted
