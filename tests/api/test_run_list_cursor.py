"""``run/list``'s keyset cursor (issue 17, open-api-v2.md §7): ``data.next_cursor`` continues a
list strictly after the last run shown, newest first, so runs submitted between two fetches
neither repeat nor push a run out of the walk; a cursor keeps its filters; a garbled or
foreign one, or a cursor beside ``page``, is a 400 with the error envelope. chenyu's
``page``/``page_size`` answer as before."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support import api
from tests.support.factories import Customer, customer, operator, publish_package, sleepy_package
from wfrun.runtime import Runtime
from wfrun.services import runs as runs_service

LIST = "/workflow/run/list"


async def _list(http: httpx.AsyncClient, who: Customer, **params: Any) -> dict[str, Any]:
    response = await http.get(LIST, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _ids(data: dict[str, Any]) -> list[str]:
    return [item["run_order_id"] for item in data["items"]]


async def _refused(http: httpx.AsyncClient, who: Customer, **params: Any) -> str:
    """The detail of a 400 INVALID_PARAMETER answer, after checking its whole envelope."""
    response = await http.get(LIST, params=params, headers=who.headers)
    assert response.status_code == 400, response.text
    body = response.json()
    detail: str = body["data"]["error"]["detail"]
    reason = "Request parameter is invalid."
    assert body == api.refusal(reason, detail, "INVALID_PARAMETER", 400)
    return detail


async def _setup(runtime: Runtime) -> tuple[str, Customer]:
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    return workflow_id, await customer(runtime)


async def _submit(http: httpx.AsyncClient, who: Customer, workflow_id: str, key: str) -> str:
    run_id: str = (await api.submit(http, who, workflow_id, key))["run_order_id"]
    return run_id


async def test_a_cursor_walk_sees_each_run_once_while_runs_are_submitted(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    workflow_id, alice = await _setup(runtime)
    before = [await _submit(http, alice, workflow_id, f"k{n}") for n in range(5)]
    first = await _list(http, alice, page_size=2)
    assert (first["page"], first["page_size"], first["total"]) == (1, 2, 5)
    walked = _ids(first)
    cursor = first["next_cursor"]
    newer: list[str] = []
    while cursor is not None:
        newer.append(await _submit(http, alice, workflow_id, f"new{len(newer)}"))
        data = await _list(http, alice, page_size=2, cursor=cursor)
        assert data["page"] is None
        assert data["total"] == 5 + len(newer)  # counted from the newest run
        walked += _ids(data)
        cursor = data["next_cursor"]
    assert walked == before[::-1]  # newest first, none twice, none skipped
    assert len(newer) == 2  # three pages: a run was submitted before each of the later two
    again = await _list(http, alice, page_size=7)  # chenyu's pages see everything, exactly
    assert _ids(again) == (before + newer)[::-1]
    assert again["next_cursor"] is None


async def test_page_numbers_answer_as_before_and_hand_over_to_the_cursor(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    workflow_id, alice = await _setup(runtime)
    ids = [await _submit(http, alice, workflow_id, f"k{n}") for n in range(5)][::-1]
    second = await _list(http, alice, page=2, page_size=2)
    assert (_ids(second), second["page"], second["total"]) == (ids[2:4], 2, 5)
    rest = await _list(http, alice, page_size=2, cursor=second["next_cursor"])
    assert (_ids(rest), rest["next_cursor"]) == (ids[4:], None)
    last = await _list(http, alice, page=3, page_size=2)
    assert (_ids(last), last["next_cursor"]) == (ids[4:], None)
    beyond = await _list(http, alice, page=4, page_size=2)
    assert (beyond["items"], beyond["next_cursor"], beyond["total"]) == ([], None, 5)


async def test_runs_submitted_in_the_same_microsecond_are_ordered_by_id(
    runtime: Runtime, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id, alice = await _setup(runtime)
    instant = datetime(2026, 11, 30, 9, 0, 0, 123456, tzinfo=UTC)
    monkeypatch.setattr(runs_service, "utcnow", lambda: instant)
    ids = [await _submit(http, alice, workflow_id, f"k{n}") for n in range(5)]
    walked: list[str] = []
    params: dict[str, Any] = {"page_size": 2}
    while True:
        data = await _list(http, alice, **params)
        walked += _ids(data)
        if data["next_cursor"] is None:
            break
        params["cursor"] = data["next_cursor"]
    assert walked == sorted(ids, reverse=True)


async def test_a_cursor_keeps_its_filters(runtime: Runtime, http: httpx.AsyncClient) -> None:
    workflow_id, alice = await _setup(runtime)
    other = await publish_package(
        runtime, await operator(runtime), sleepy_package() | {"slug": "other"}
    )
    mine = [await _submit(http, alice, workflow_id, f"k{n}") for n in range(4)]
    await _submit(http, alice, other, "elsewhere")
    for run_id in mine[:3]:
        await api.cancel(http, alice, run_id)
    first = await _list(http, alice, page_size=2, workflow_id=workflow_id, status="cancelled")
    cursor = first["next_cursor"]
    rest = await _list(
        http, alice, page_size=2, workflow_id=workflow_id, run_status="cancelled", cursor=cursor
    )
    assert _ids(first) + _ids(rest) == mine[2::-1]  # `status` and `run_status` are one filter
    assert rest["next_cursor"] is None
    detail = await _refused(http, alice, page_size=2, workflow_id=other, cursor=cursor)
    assert detail == (
        f"cursor: it was made for workflow_id={workflow_id}, run_status=cancelled but this "
        f"request has workflow_id={other}, run_status=(any); send the filters of the request "
        "that returned it"
    )
    await _refused(http, alice, page_size=2, workflow_id=workflow_id, cursor=cursor)


def _forged(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


GOOD = {"v": 1, "at": 1_764_493_200_000_000, "id": "wfrun_0", "w": "", "s": ""}
GARBLED = {
    "!!not-base64!!": "it is not base64url JSON",
    _forged(["a list"]): "unknown format",
    _forged(GOOD | {"v": 2}): "unknown format",
    _forged(
        {k: v for k, v in GOOD.items() if k != "id"}
    ): "a field is missing or of the wrong type",
    _forged(GOOD | {"at": "yesterday"}): "a field is missing or of the wrong type",
    _forged(GOOD | {"at": 10**20}): "its time is out of range",
    _forged(GOOD | {"id": "wfrun_\u0000"}): "its run id is not one",  # PostgreSQL refuses NUL
    _forged(GOOD | {"id": "\ud800"}): "its run id is not one",  # a lone surrogate
}


async def test_a_garbled_cursor_is_refused_precisely(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    workflow_id, alice = await _setup(runtime)
    await _submit(http, alice, workflow_id, "k")
    for cursor, why in GARBLED.items():
        detail = await _refused(http, alice, cursor=cursor)
        assert detail == (
            f"cursor: not a cursor of /workflow/run/list ({why}); pass data.next_cursor unchanged"
        )
    assert _ids(await _list(http, alice, cursor=_forged(GOOD))) == []  # well formed: older runs
    assert "cursor" in await _refused(http, alice, cursor="")
    assert "cursor" in await _refused(http, alice, cursor="x" * 513)


async def test_page_and_cursor_together_are_refused(
    runtime: Runtime, http: httpx.AsyncClient
) -> None:
    workflow_id, alice = await _setup(runtime)
    for n in range(3):
        await _submit(http, alice, workflow_id, f"k{n}")
    cursor = (await _list(http, alice, page_size=1))["next_cursor"]
    for page in (1, 2):
        detail = await _refused(http, alice, page=page, page_size=1, cursor=cursor)
        assert detail == "page: send page or cursor, not both (a cursor is its own place)"
