"""The log of a real ``wfrun serve`` process (issue 14: "the server log held nothing after
start-up"): its stderr is read line by line, and every line must be one JSON object (stderr is
a file here, so the default format is json). One run, a few requests and a bug's 500 must show
as: one access line per request with its request id, the run's status changes and settlement
with its ``run_order_id``, and for the 500 one error line with one traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tests.chaos.conftest import fresh_url  # noqa: F401 (the chaos tests' fixture)
from tests.chaos.harness import (
    Cluster,
    Customer,
    Proc,
    all_ended,
    chaos_settings,
    cluster,
)
from tests.support.waiting import until_sync
from wfrun.db.database import Database
from wfrun.db.schema import runs
from wfrun.domain.money import format_amount

PREFIX = "/api/open/v2"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def serve(group: Cluster, name: str = "serve", **env: str) -> tuple[Proc, Path, str]:
    """``wfrun serve --port 0`` with stdout (the banner) and stderr (the log) apart."""
    out, err = group.tmp / f"{name}.out", group.tmp / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        popen = subprocess.Popen(
            [sys.executable, "-m", "wfrun", "serve", "--port", "0"],
            env=group.env | env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    proc = Proc(name, popen, out)
    group.procs.append(proc)
    return proc, err, group.api_url(proc)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be a JSON object."""
    lines = [line for line in path.read_text().splitlines() if line]
    return [json.loads(line) for line in lines]


def logged(path: Path, **match: Any) -> list[dict[str, Any]]:
    return [r for r in json_lines(path) if all(r.get(k) == v for k, v in match.items())]


def access(path: Path, request_id: str) -> dict[str, Any]:
    """The one access line of a request, once written."""
    found = until_sync(
        lambda: logged(path, logger="wfrun.access", request_id=request_id),
        what=f"the access line of {request_id}",
    )
    assert len(found) == 1, found
    return found[0]


def run_row(url: str, run_id: str) -> Any:
    async def read() -> Any:
        db = Database(url, pool_size=1)
        try:
            async with db.transaction() as conn:
                return (await conn.execute(select(runs).where(runs.c.id == run_id))).one()
        finally:
            await db.dispose()

    return asyncio.run(read())


def set_freeze_status(url: str, run_id: str, value: str) -> None:
    """Writes a value no code writes: reading the run is then a bug's 500 (a ValueError)."""

    async def write() -> None:
        db = Database(url, pool_size=1)
        try:
            async with db.transaction(write=True) as conn:
                statement = text("UPDATE runs SET freeze_status = :v WHERE id = :id")
                await conn.execute(statement, {"v": value, "id": run_id})
        finally:
            await db.dispose()

    asyncio.run(write())


def test_serve_logs_requests_runs_and_a_bug_as_json_lines(fresh_url, tmp_path):  # noqa: F811
    settings = chaos_settings(fresh_url, tmp_path / "data")
    with cluster(settings, tmp_path) as group:
        who = group.provision(seconds=0.05)
        _, log, url = serve(group)
        with httpx.Client(base_url=url, timeout=30) as http:
            run_id = _submit_and_finish(http, who, settings, log)
            _requests_get_ids(http, who, log)
            _a_bug_is_one_line_and_one_traceback(http, who, fresh_url, run_id, log)
        assert logged(log, logger="uvicorn.access") == []
        json_lines(log)  # still every line JSON


def _submit_and_finish(http: httpx.Client, who: Customer, settings: Any, log: Path) -> str:
    given = "ops-submit-1"
    body = {"workflow_id": who.workflow_id, "idempotency_key": "k1", "inputs": {}}
    headers = {"Authorization": f"Bearer {who.key}", "X-Request-Id": given}
    answer = http.post("/workflow/run/submit", json=body, headers=headers)
    assert (answer.status_code, answer.headers["x-request-id"]) == (200, given)
    run_id: str = answer.json()["data"]["run_order_id"]
    line = access(log, given)
    assert {k: line[k] for k in ("method", "path", "route", "status", "account_id")} == {
        "method": "POST",
        "path": f"{PREFIX}/workflow/run/submit",
        "route": f"{PREFIX}/workflow/run/submit",
        "status": 200,
        "account_id": who.account_id,
    }
    assert line["latency_ms"] > 0
    until_sync(lambda: all_ended(settings, [run_id]), what="the run to end")
    changes = until_sync(
        lambda: (
            [r for r in logged(log, event="run status changed", run_order_id=run_id)]
            if logged(log, event="run settled", run_order_id=run_id)
            else None
        ),
        what="the run's lines",
    )
    assert [(c["previous_status"], c["status"], c["account_id"]) for c in changes] == [
        (None, "queued", who.account_id),
        ("queued", "running", who.account_id),
        ("running", "succeeded", who.account_id),
    ]
    assert changes[0]["request_id"] == given  # logged while the submit was handled
    _settlement_is_logged(log, run_id, who, settings.resolved_database_url)
    return run_id


def _settlement_is_logged(log: Path, run_id: str, who: Customer, url: str) -> None:
    (line,) = logged(log, event="run settled", run_order_id=run_id)
    row = run_row(url, run_id)
    assert row.final_amount > 0
    assert {k: line[k] for k in ("account_id", "freeze_status", "frozen")} == {
        "account_id": who.account_id,
        "freeze_status": "settled",
        "frozen": format_amount(row.quote_amount),
    }
    assert (line["final_amount"], line["released_amount"], line["shortfall_amount"]) == (
        format_amount(row.final_amount),
        format_amount(row.released_amount),
        "0.00000000",
    )


def _requests_get_ids(http: httpx.Client, who: Customer, log: Path) -> None:
    auth = {"Authorization": f"Bearer {who.key}"}
    listed = http.get("/workflow/run/list", headers=auth)
    generated = listed.headers["x-request-id"]
    assert (listed.status_code, bool(GENERATED_ID.fullmatch(generated))) == (200, True)
    assert access(log, generated)["status"] == 200
    refused = http.get("/workflow/run/list", headers={"Authorization": "Bearer nope"})
    line = access(log, refused.headers["x-request-id"])
    assert (refused.status_code, line["status"], "account_id" in line) == (401, 401, False)
    assert line["path"] == f"{PREFIX}/workflow/run/list"
    for unfit in (b"has space", b"tab\there", b"x" * 129, "é".encode()):
        headers = {k.encode(): v.encode() for k, v in auth.items()} | {b"X-Request-Id": unfit}
        answer = http.get("/workflow/run/list", headers=headers)
        fresh = answer.headers["x-request-id"]
        assert GENERATED_ID.fullmatch(fresh), (unfit, fresh)
        assert access(log, fresh)["status"] == 200
    longest = "~" * 128
    answer = http.get("/workflow/run/list", headers=auth | {"X-Request-Id": longest})
    assert (answer.headers["x-request-id"], access(log, longest)["status"]) == (longest, 200)


def _a_bug_is_one_line_and_one_traceback(
    http: httpx.Client, who: Customer, url: str, run_id: str, log: Path
) -> None:
    assert "Traceback" not in log.read_text()
    set_freeze_status(url, run_id, "bogus")
    try:
        headers = {"Authorization": f"Bearer {who.key}", "X-Request-Id": "ops-bug-1"}
        answer = http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=headers)
    finally:
        set_freeze_status(url, run_id, "settled")
    assert (answer.status_code, answer.headers["x-request-id"]) == (500, "ops-bug-1")
    assert answer.json()["data"]["error"]["engine_code"] == "INTERNAL_ERROR"
    assert access(log, "ops-bug-1")["status"] == 500
    errors = logged(log, level="error")
    assert [e["event"] for e in errors] == ["unhandled error"]
    (error,) = errors
    expected = {
        "request_id": "ops-bug-1",
        "account_id": who.account_id,
        "method": "GET",
        "path": f"{PREFIX}/workflow/run/info",
        "route": f"{PREFIX}/workflow/run/info",
        "error_type": "builtins.ValueError",
        "error": "'bogus' is not a valid FreezeStatus",
    }
    assert {k: error[k] for k in expected} == expected
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert error["exception"].endswith("ValueError: 'bogus' is not a valid FreezeStatus")
    assert log.read_text().count("Traceback (most recent call last)") == 1
    assert [r for r in json_lines(log) if "exception" in r] == [error]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_console_format_and_level_are_settings(database_url, tmp_path):
    """``WFRUN_LOG__FORMAT=console`` writes readable lines; ``WFRUN_LOG__LEVEL=warning``
    keeps the info lines (start-up, access) out."""
    settings = chaos_settings(database_url, tmp_path / "data")
    with cluster(settings, tmp_path) as group:
        _, log, url = serve(group, "console", WFRUN_LOG__FORMAT="console")
        answer = httpx.get(f"{url}/workflow/run/list", headers={"X-Request-Id": "ops-console"})
        assert answer.status_code == 401
        line = until_sync(
            lambda: next((x for x in log.read_text().splitlines() if "ops-console" in x), None),
            what="the console access line",
        )
        assert not line.startswith("{")
        for part in ("[info", "request", "request_id=ops-console", "status=401", "method=GET"):
            assert part in line, (part, line)
        _, log, url = serve(group, "quiet", WFRUN_LOG__LEVEL="warning")
        answer = httpx.get(f"{url}/workflow/run/list", headers={"X-Request-Id": "ops-quiet"})
        assert answer.headers["x-request-id"] == "ops-quiet"
        group.stop_all()
        assert "ops-quiet" not in log.read_text()
        assert "Application startup complete" not in log.read_text()
