"""The live event stream ``GET /workflow/run/events`` through real servers on loopback, on
SQLite and PostgreSQL: a run's life in order, resuming without gap or duplicate, the account
stream, errors, the per-key cap and the keepalive comment."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import submit
from tests.support.factories import Customer, customer, data_uri, drain, operator, png_bytes
from tests.support.factories import publish_demo as publish
from tests.support.sse import Event, open_stream
from tests.support.waiting import until
from wfrun.runtime import Runtime
from wfrun.services import accounts


def _inputs() -> dict[str, Any]:
    return {"n1_image": data_uri(png_bytes(16, 8)), "n2_width": 16, "n6_value": "hi"}


async def _setup(runtime: Runtime) -> tuple[Customer, str]:
    owner = await operator(runtime)
    workflow_id = (await publish(runtime, owner)).workflow_id
    return await customer(runtime, balance="5"), workflow_id


async def _submit(http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str) -> str:
    return str((await submit(http, who, workflow_id, key, _inputs()))["run_order_id"])


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["data"]["error"]
    assert error["status_code"] == response.status_code
    return error


async def _history(
    http: httpx.AsyncClient, who: Customer, run_id: str, **resume: Any
) -> list[tuple[int, str]]:
    """(id, name) of every event of an ended run's stream (which then ends by itself); ids
    are unique, so equal lists mean no gap and no duplicate."""
    async with open_stream(http, who.headers, run_id=run_id, **resume) as stream:
        return [(e.id, e.event) for e in await stream.rest()]


async def test_a_runs_stream_shows_its_life_in_order(runtime: Runtime, http: httpx.AsyncClient):
    alice, workflow_id = await _setup(runtime)
    run_id = await _submit(http, alice, workflow_id, "life")
    async with open_stream(http, alice.headers, run_id=run_id) as stream:
        first = await stream.next()
        assert (first.event, first.data["run_status"]) == ("status", "queued")
        await drain(runtime)  # the run happens while the stream is open
        events = [first, *await stream.until_done()]
        assert await stream.rest() == []  # the stream ends after done

    ids = [e.id for e in events]
    assert ids == sorted(set(ids)), ids
    names = [e.event for e in events]
    statuses = [e.data["run_status"] for e in events if e.event == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    running = next(
        i for i, e in enumerate(events) if e.event == "status" and e.data["run_status"] == "running"
    )
    ended = next(
        i
        for i, e in enumerate(events)
        if e.event == "status" and e.data["run_status"] == "succeeded"
    )
    progress = [i for i, name in enumerate(names) if name == "progress"]
    assert progress
    assert running < min(progress)
    assert max(progress) < ended
    assert [e.data["progress_percent"] for e in events if e.event == "progress"][-1] == 99
    assert names[ended + 1 :] == ["output", "done"]
    assert events[ended + 1].data["outputs"]["n7_text"] == "hi"
    assert {e.data["run_order_id"] for e in events} == {run_id}
    assert "log" in names[:ended]  # the run's log lines come too ("started", …)

    done = events[-1].data
    info = (
        await http.get("/workflow/run/info", params={"run_order_id": run_id}, headers=alice.headers)
    ).json()["data"]
    assert {k: v for k, v in done.items() if k != "outputs"} == {
        k: v for k, v in info.items() if k != "outputs"
    }
    assert done["run_status"] == "succeeded"
    assert done["final_amount"] == info["final_amount"]


async def test_resuming_from_any_event_continues_without_gap_or_duplicate(
    runtime: Runtime, http: httpx.AsyncClient
):
    alice, workflow_id = await _setup(runtime)
    run_id = await _submit(http, alice, workflow_id, "resume")
    async with open_stream(http, alice.headers, run_id=run_id) as stream:
        dropped_after = await stream.next()  # then the connection drops
    await drain(runtime)
    full = await _history(http, alice, run_id)
    assert full[0] == (dropped_after.id, dropped_after.event)
    assert await _history(http, alice, run_id, last_event_id=dropped_after.id) == full[1:]
    for i, event in enumerate(full):  # every cut, also between a row's status/output/done
        assert await _history(http, alice, run_id, last_event_id=event[0]) == full[i + 1 :]
    middle = full[len(full) // 2]
    by_query = await _history(http, alice, run_id, query_id=str(middle[0]))
    assert by_query == full[len(full) // 2 + 1 :]


async def test_the_account_stream_follows_every_run_and_stays_open(
    runtime: Runtime, http: httpx.AsyncClient
):
    alice, workflow_id = await _setup(runtime)
    bob = await customer(runtime, balance="5", name="bob")
    bobs = await _submit(http, bob, workflow_id, "bob")
    async with open_stream(http, alice.headers) as stream:
        runs = {await _submit(http, alice, workflow_id, f"acct-{i}") for i in range(2)}
        await drain(runtime)
        seen: list[Event] = []
        while sum(e.event == "done" for e in seen) < 2:
            seen.append(await stream.next())
    assert {e.data["run_order_id"] for e in seen} == runs  # not bob's run
    assert bobs not in {e.data["run_order_id"] for e in seen}
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids))


async def test_stream_errors_use_the_envelope(runtime: Runtime, http: httpx.AsyncClient):
    alice, workflow_id = await _setup(runtime)
    bob = await customer(runtime, balance="5", name="bob")
    run_id = await _submit(http, alice, workflow_id, "errors")
    url = "/workflow/run/events"
    unknown = await http.get(
        url, params={"run_order_id": "wfrun_" + "0" * 20}, headers=alice.headers
    )
    assert unknown.status_code == 404
    assert _error(unknown)["engine_code"] == "RUN_NOT_FOUND"
    foreign = await http.get(url, params={"run_order_id": run_id}, headers=bob.headers)
    assert foreign.status_code == 404
    assert _error(foreign)["engine_code"] == "RUN_NOT_FOUND"
    bad_query = await http.get(
        url, params={"run_order_id": run_id, "last_event_id": "x1"}, headers=alice.headers
    )
    assert bad_query.status_code == 400
    assert "last_event_id" in _error(bad_query)["detail"]
    bad_header = await http.get(
        url, params={"run_order_id": run_id}, headers=alice.headers | {"Last-Event-ID": "-4"}
    )
    assert bad_header.status_code == 400
    assert _error(bad_header)["engine_code"] == "INVALID_PARAMETER"
    assert "Last-Event-ID" in _error(bad_header)["detail"]
    anonymous = await http.get(url, params={"run_order_id": run_id})
    assert anonymous.status_code == 401


async def _opens(http: httpx.AsyncClient, who: Customer) -> httpx.Response:
    request = http.build_request("GET", "/workflow/run/events", headers=who.headers)
    response = await http.send(request, stream=True)
    await response.aclose()
    return response


async def test_open_streams_per_key_are_capped(runtime: Runtime, http: httpx.AsyncClient):
    runtime.settings.live.max_streams_per_key = 1
    alice, _ = await _setup(runtime)
    second_key = await accounts.create_key(runtime.db, account_id=alice.account_id)
    alice_too = Customer(alice.account_id, second_key.secret)
    async with open_stream(http, alice.headers):
        refused = await http.get("/workflow/run/events", headers=alice.headers)
        assert refused.status_code == 429
        assert _error(refused)["engine_code"] == "TOO_MANY_STREAMS"
        assert refused.headers["Retry-After"]
        assert (await _opens(http, alice_too)).status_code == 200  # the cap is per key

    async def freed() -> bool:
        return (await _opens(http, alice)).status_code == 200

    await until(freed, what="the closed stream to free its slot")


async def test_an_idle_stream_sends_keepalive_comments(runtime: Runtime, http: httpx.AsyncClient):
    runtime.settings.live.keepalive_seconds = 0.2
    alice, _ = await _setup(runtime)
    async with open_stream(http, alice.headers) as stream:
        assert await stream.next_comment() == "keepalive"
        assert await stream.next_comment() == "keepalive"
