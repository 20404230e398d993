"""``run/list``'s ``total`` is counted up to a cap (issue 17: an exact count over a long history
is a scan), or to one past the page asked for when that is further, so a next page always
shows; the page itself is exact."""

from __future__ import annotations

import httpx
import pytest

from tests.support.factories import customer, operator, publish_package, sleepy_package
from wfrun.db import run_list
from wfrun.runtime import Runtime


async def _list(http: httpx.AsyncClient, headers: dict[str, str], page: int) -> dict[str, object]:
    params = {"page": page, "page_size": 1}
    response = await http.get("/workflow/run/list", params=params, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


async def test_the_total_is_capped_and_a_next_page_always_shows(
    runtime: Runtime, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_list, "LIST_COUNT_CAP", 2)
    workflow_id = await publish_package(runtime, await operator(runtime), sleepy_package())
    alice = await customer(runtime)
    ids = []
    for n in range(5):
        body = {"workflow_id": workflow_id, "idempotency_key": f"k{n}", "inputs": {}}
        response = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
        ids.append(response.json()["data"]["run_order_id"])
    first = await _list(http, alice.headers, 1)
    assert first["total"] == 2  # capped
    third = await _list(http, alice.headers, 3)
    assert third["total"] == 4  # one past page 3: a page 4 exists
    assert [i["run_order_id"] for i in third["items"]] == [ids[2]]  # type: ignore[attr-defined]
    last = await _list(http, alice.headers, 5)
    assert last["total"] == 5  # exact at the end
    assert [i["run_order_id"] for i in last["items"]] == [ids[0]]  # type: ignore[attr-defined]
    beyond = await _list(http, alice.headers, 9)
    assert beyond["items"] == []
    assert beyond["total"] == 5
