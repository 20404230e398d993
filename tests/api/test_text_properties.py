"""Property: whatever text a submit carries in any of its string fields (any code point,
unpaired surrogates and NUL included), the answer is a 2xx or a 4xx in the envelope, never a
5xx; and a 4xx changed nothing (runs, freezes, jobs, ledger, balances).

Hypothesis drives a plain HTTP client in a thread while the real server serves on the test's
event loop; the snapshot of the books is taken on that loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from tests.support.factories import (
    customer,
    data_uri,
    money_snapshot,
    operator,
    png_bytes,
    publish_demo,
)
from tests.support.server import LiveServer
from wfrun.runtime import Runtime

EXAMPLES = 60

any_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates and NUL included
    st.sampled_from(
        ["\x00", "a\x00b", "\ud800", "x\udfff", "\ud83d", "\ud83d\ude00", "²", "\ufeff"]
    ),
)
FIELDS = [
    ("workflow_id",),
    ("revision_id",),
    ("idempotency_key",),
    ("inputs", "n6_value"),
    ("inputs", "n2_upscale_method"),
    ("inputs", "n1_image"),
    ("inputs", None),  # a key of its own
    (None,),  # a top-level key of its own
]


def _body(workflow_id: str, image: str) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "idempotency_key": "base",
        "inputs": {"n1_image": image, "n6_value": "caption"},
    }


def _place(body: dict[str, Any], where: tuple[str | None, ...], text: str) -> None:
    target = body if len(where) == 1 else body["inputs"]
    name = where[-1]
    target[text if name is None else name] = text


@st.composite
def submits(draw: st.DrawFn, workflow_id: str, image: str) -> dict[str, Any]:
    body = _body(workflow_id, image)
    for where in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        _place(body, where, draw(any_text))
    body["idempotency_key"] = body["idempotency_key"] + "-" + str(draw(st.integers(0, 10**9)))
    return body


def _check(client: httpx.Client, body: dict[str, Any], snapshot: Any) -> None:
    before = snapshot()
    response = client.post(
        "/workflow/run/submit",
        content=json.dumps(body),  # escapes surrogates and NUL as a JSON client would
        headers={"content-type": "application/json"},
    )
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        error = response.json()["data"]["error"]
        assert error["status_code"] == response.status_code
        assert snapshot() == before, (body, response.text)


def _run_property(base_url: str, headers: dict[str, str], strategy: Any, snapshot: Any) -> None:
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:

        @hypothesis.seed(20261129)
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(body=strategy)
        def submit_anything(body: dict[str, Any]) -> None:
            _check(client, body, snapshot)

        submit_anything()


async def test_any_text_in_any_submit_field_is_never_a_5xx(runtime: Runtime, server: LiveServer):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime, balance="1000")
    loop = asyncio.get_running_loop()

    def snapshot() -> Any:
        return asyncio.run_coroutine_threadsafe(money_snapshot(runtime), loop).result(30)

    strategy = submits(workflow_id, data_uri(png_bytes(8, 8)))
    await asyncio.to_thread(_run_property, server.api_url, alice.headers, strategy, snapshot)
