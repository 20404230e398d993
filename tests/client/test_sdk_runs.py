"""The SDK end to end against the real app: upload → submit → wait → downloaded outputs, exact
money, errors by class, paging, waiting by polling, cancel. Sync clients run in a thread
(the server shares the test's event loop)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import wfrun_client
from tests.client.conftest import Live
from tests.support import factories
from tests.support.waiting import until
from wfrun.runtime import Runtime
from wfrun_client import AsyncClient, Client, RunEvent, models


def _client(env: Live, **kw) -> Client:
    return Client(base_url=env.server.base_url, api_key=env.key, **kw)


def _balance(env: Live) -> models.Balance:
    with _client(env) as client:
        return client.account.balance()


def _run_ids(env: Live) -> list[str]:
    with _client(env) as client:
        return [r.run_order_id for r in client.runs.list()]


def _upload_run_download(env: Live, dest: Path) -> tuple[models.RunInfo, dict[str, list[Path]]]:
    """The README's "few lines": what a user writes."""
    with _client(env) as client:
        image = client.assets.upload(env.image)
        run = client.runs.submit(
            env.demo, {"n1_image": image.asset_uri, "n6_value": "hi"}, wait=True
        )
        return run, client.runs.download_outputs(run.run_order_id, dest)


async def test_a_run_from_upload_to_downloaded_outputs(live: Live, tmp_path: Path):
    before = await asyncio.to_thread(_balance, live)
    run, files = await asyncio.to_thread(_upload_run_download, live, tmp_path / "out")
    assert run.run_status == "succeeded"
    assert sorted(files) == ["n5_images", "n7_text"]
    poster = files["n5_images"][0]
    assert poster.name == "n5_images_0.png"
    assert poster.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert files["n7_text"][0].read_text() == "hi"
    final, released = run.final_amount, run.released_amount
    assert final is not None
    assert released is not None
    assert final + released == run.quote_amount
    after = await asyncio.to_thread(_balance, live)
    assert before.available_amount is not None
    assert after.available_amount == before.available_amount - final
    assert after.frozen_amount == Decimal(0)


def _comparable(value: dict[str, Any]) -> dict[str, Any]:
    """A response without what differs between two runs (ids, times, links, durations)."""
    volatile = ("_id", "_at", "url", "run_id", "_cost", "_amount", "outputs", "inputs")
    return {k: v for k, v in value.items() if not any(k.endswith(s) or k == s for s in volatile)}


def _sync_walk(env: Live) -> list[dict[str, Any]]:
    with _client(env) as client:
        flows = [w.model_dump(mode="json") for w in client.workflows.list()]
        uri = client.assets.upload(env.image).asset_uri
        quote = client.runs.quote(env.demo, {"n1_image": uri}).model_dump(mode="json")
        done = client.runs.submit(env.demo, {"n1_image": uri}, wait=True)
        try:
            client.runs.get("wfrun_00000000000000000000")
        except wfrun_client.NotFound as e:
            missing = {"class": type(e).__name__, "code": e.engine_code, "status": e.status_code}
        return [*flows, quote, _comparable(done.model_dump(mode="json")), missing]


async def _async_walk(env: Live) -> list[dict[str, Any]]:
    async with AsyncClient(base_url=env.server.api_url, api_key=env.key) as client:
        flows = [w.model_dump(mode="json") async for w in client.workflows.list()]
        uri = (await client.assets.upload(env.image)).asset_uri
        quote = (await client.runs.quote(env.demo, {"n1_image": uri})).model_dump(mode="json")
        done = await client.runs.submit(env.demo, {"n1_image": uri}, wait=True)
        try:
            await client.runs.get("wfrun_00000000000000000000")
        except wfrun_client.NotFound as e:
            missing = {"class": type(e).__name__, "code": e.engine_code, "status": e.status_code}
        return [*flows, quote, _comparable(done.model_dump(mode="json")), missing]


async def test_async_and_sync_clients_give_the_same_answers(live: Live):
    """Also: the server root and the /api/open/v2 prefix are both accepted as base URL."""
    got_sync = await asyncio.to_thread(_sync_walk, live)
    got_async = await _async_walk(live)
    assert got_sync == got_async
    assert got_sync[-2]["run_status"] == "succeeded"
    assert got_sync[-1] == {"class": "NotFound", "code": "RUN_NOT_FOUND", "status": 404}


@pytest.mark.parametrize(
    ("call", "cls", "code", "status"),
    [
        ("unknown_workflow", wfrun_client.NotFound, "WORKFLOW_NOT_FOUND", 404),
        ("unknown_input", wfrun_client.InvalidRequest, "INVALID_WORKFLOW_INPUT", 400),
        ("bad_key", wfrun_client.AuthError, "API_KEY_INVALID", 401),
        ("reused_key", wfrun_client.IdempotencyConflict, "IDEMPOTENCY_KEY_REUSED", 422),
        ("poor", wfrun_client.InsufficientBalance, "INSUFFICIENT_BALANCE", 402),
    ],
)
async def test_errors_are_exceptions_of_their_category(
    idle: Live,
    runtime: Runtime,
    call: str,
    cls: type[wfrun_client.APIError],
    code: str,
    status: int,
):
    poor = await factories.customer(runtime, balance="0", name="poor")
    keys = {"bad_key": "wfk_not-a-key", "poor": poor.key}

    async def attempt() -> None:
        key = keys.get(call, idle.key)
        async with AsyncClient(base_url=idle.server.base_url, api_key=key) as client:
            uri = (await client.assets.upload(idle.image)).asset_uri if call == "poor" else "x"
            if call == "unknown_workflow":
                await client.runs.submit("wf_00000000000000000000", {})
            elif call == "unknown_input":
                await client.runs.quote(idle.demo, {"n1_image": "x", "nope": 1})
            elif call == "reused_key":
                await client.runs.submit(idle.demo, {"n1_image": "data:,x"}, idempotency_key="k1")
            else:
                await client.runs.submit(idle.demo, {"n1_image": uri})

    if call == "reused_key":
        async with AsyncClient(base_url=idle.server.base_url, api_key=idle.key) as client:
            image = (await client.assets.upload(idle.image)).asset_uri
            await client.runs.submit(idle.demo, {"n1_image": image}, idempotency_key="k1")
    with pytest.raises(cls) as caught:
        await attempt()
    assert (caught.value.engine_code, caught.value.status_code) == (code, status)
    assert caught.value.detail
    if call == "unknown_input":
        assert "nope" in caught.value.detail


async def test_list_iterates_every_page(idle: Live):
    pages: list[str] = []

    async def count(request: httpx.Request) -> None:
        if request.url.path.endswith("/workflow/run/list"):
            params = request.url.params
            pages.append(params.get("page", "cursor" if "cursor" in params else "?"))

    async with (
        httpx.AsyncClient(event_hooks={"request": [count]}) as http,
        AsyncClient(idle.server.base_url, idle.key, http_client=http) as client,
    ):
        uri = (await client.assets.upload(idle.image)).asset_uri
        submitted = [
            (await client.runs.submit(idle.demo, {"n1_image": uri})).run_order_id for _ in range(5)
        ]
        listed = [run.run_order_id async for run in client.runs.list(page_size=2)]
    assert sorted(listed) == sorted(submitted)
    assert listed == sorted(listed, key=submitted.index, reverse=True)  # newest first
    assert pages == ["1", "cursor", "cursor"]  # page 1, then each page's next_cursor
    sync = await asyncio.to_thread(_run_ids, idle)
    assert sync == listed


def _walk_while_submitting(env: Live, uri: str) -> tuple[list[str], list[str]]:
    """The runs ``runs.list`` yields, two per page, while a run is submitted after each of
    them is read; and the runs submitted meanwhile."""
    newer: list[str] = []
    with _client(env) as client:
        listed = []
        for run in client.runs.list(page_size=2):
            listed.append(run.run_order_id)
            newer.append(client.runs.submit(env.demo, {"n1_image": uri}).run_order_id)
    return listed, newer


async def test_list_follows_the_cursor_while_runs_are_submitted(idle: Live):
    async with AsyncClient(idle.server.base_url, idle.key) as client:
        uri = (await client.assets.upload(idle.image)).asset_uri
        before = [
            (await client.runs.submit(idle.demo, {"n1_image": uri})).run_order_id for _ in range(5)
        ]
    listed, newer = await asyncio.to_thread(_walk_while_submitting, idle, uri)
    assert listed == before[::-1]  # none of the newer runs, none twice, none skipped
    assert len(newer) == 5
    async with AsyncClient(idle.server.base_url, idle.key) as client:
        everything = [run.run_order_id async for run in client.runs.list(page_size=3)]
        first = await client.runs.page(page_size=3)
        rest = await client.runs.page(page=9, page_size=3, cursor=first.next_cursor)
    assert everything == (before + newer)[::-1]
    assert (first.page, rest.page) == (1, None)  # a cursor's page has no number
    assert [r.run_order_id for r in first.items + rest.items] == everything[:6]


async def test_wait_by_polling_reports_each_step_once(live: Live):
    events: list[RunEvent] = []
    async with AsyncClient(live.server.base_url, live.key) as client:
        uri = (await client.assets.upload(live.image)).asset_uri
        run = await client.runs.submit(live.demo, {"n1_image": uri, "n6_value": "poll"})
        info = await client.runs.wait(
            run.run_order_id, on_event=events.append, poll_interval=0.02, stream=False
        )
        again = await client.runs.get(run.run_order_id)
        assert info.model_dump(exclude={"outputs"}) == again.model_dump(exclude={"outputs"})
    names = [e.event for e in events]
    statuses = [e.data["run_status"] for e in events if e.event == "status"]
    assert statuses[-1] == "succeeded"
    assert statuses == list(dict.fromkeys(statuses))  # each status once
    assert names[-2:] == ["output", "done"]
    assert events[-2].data["outputs"]["n7_text"] == "poll"
    assert events[-1].data["run_status"] == "succeeded"
    progress = [e for e in events if e.event in ("progress", "log")]
    keys = [(e.data["at"], e.data["message"]) for e in progress]
    assert progress
    assert len(keys) == len(set(keys))


async def test_wait_times_out_on_a_queued_run_and_reports_its_place(idle: Live):
    events: list[RunEvent] = []
    async with AsyncClient(idle.server.base_url, idle.key) as client:
        uri = (await client.assets.upload(idle.image)).asset_uri
        run = await client.runs.submit(idle.demo, {"n1_image": uri})
        with pytest.raises(wfrun_client.WaitTimeout):
            await client.runs.wait(run.run_order_id, on_event=events.append, timeout=0.3,
                                   poll_interval=0.05)  # fmt: skip
        assert events[0].event == "status"
        assert events[0].data["run_status"] == "queued"
        assert [e.data["position"] for e in events if e.event == "queue"] == [1]
        cancelled = await client.runs.cancel(run.run_order_id)
        assert (cancelled.cancel_outcome, cancelled.released_amount) == (
            "cancelled",
            run.quote_amount,
        )
        final = await client.runs.wait(run.run_order_id, timeout=30)
        assert final.run_status == "cancelled"
        again = await client.runs.cancel(run.run_order_id)
        assert again.cancel_outcome == "already_cancelled"


async def test_sync_wait_follows_a_run_the_worker_finishes(idle: Live, runtime: Runtime):
    """A sync ``submit(wait=True)`` blocks while the run is queued and returns once a worker
    (started by the test after seeing the run queued) has run it."""
    client = _client(idle)
    uri = await asyncio.to_thread(lambda: client.assets.upload(idle.image).asset_uri)
    waiting = asyncio.create_task(
        asyncio.to_thread(lambda: client.runs.submit(idle.demo, {"n1_image": uri}, wait=True))
    )

    async def queued() -> bool:
        return bool(await asyncio.to_thread(_run_ids, idle))

    await until(queued, what="the run to be submitted")
    assert not waiting.done()
    await factories.drain(runtime)
    info = await waiting
    assert info.run_status == "succeeded"
    client.close()
