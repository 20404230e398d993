"""Property: whatever text a submit carries in any of its string fields (any code point,
unpaired surrogates and NUL included), the answer is a 2xx or a 4xx in the envelope, never a
5xx; and a 4xx changed nothing (runs, freezes, jobs, ledger, balances). Both submits: workflow
runs and model runs.

Hypothesis drives a plain HTTP client in a thread while the real server serves on the test's
event loop; the snapshot of the books is taken on that loop.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import hypothesis
import pytest
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
from wfrun.config import Settings
from wfrun.runtime import Runtime
from wfrun.services import model_runs

EXAMPLES = 80
Where = tuple[str | None, ...]
"""A field: ``(name,)`` at the top level, ``("inputs", name)`` an input; ``None`` is a key
made of the drawn text itself."""

SPECIAL = ["\x00", "a\x00b", "\ud800", "x\udfff", "\ud83d", "\ud83d\ude00", "²", "\ufeff"]
any_text = st.one_of(
    st.sampled_from(SPECIAL),
    st.builds("".join, st.lists(st.sampled_from([*SPECIAL, "a", "é", "中"]), max_size=4)),
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates and NUL included
)
WORKFLOW_FIELDS: list[Where] = [
    ("workflow_id",),
    ("revision_id",),
    ("idempotency_key",),
    ("inputs", "n6_value"),
    ("inputs", "n2_upscale_method"),
    ("inputs", "n1_image"),
    ("inputs", None),
    (None,),
]
VIDEO_FIELDS: list[Where] = [
    ("idempotency_key",),
    ("request_id",),
    ("inputs", "model"),
    ("inputs", "prompt"),
    ("inputs", "ratio"),
    ("inputs", "resolution"),
    ("inputs", "duration"),
    ("inputs", "images"),
    ("inputs", None),
    ("inputs.prompt",),
    (None,),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Seedance enabled, so model runs are taken (no worker runs: Ark is never called)."""
    settings.seedance.ark_api_key = "property"
    settings.seedance.ark_base_url = "http://127.0.0.1:9/api/v3"
    return settings


def _place(body: dict[str, Any], where: Where, text: str) -> None:
    target = body if len(where) == 1 else body["inputs"]
    name = where[-1]
    target[text if name is None else name] = text


@st.composite
def submits(draw: st.DrawFn, base: dict[str, Any], fields: list[Where]) -> dict[str, Any]:
    body = copy.deepcopy(base)
    for where in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True)):
        _place(body, where, draw(any_text))
    body["idempotency_key"] = f"{body['idempotency_key']}-{draw(st.integers(0, 10**9))}"
    return body


def _check(client: httpx.Client, path: str, body: dict[str, Any], snapshot: Any) -> None:
    before = snapshot()
    response = client.post(
        path,
        content=json.dumps(body),  # escapes surrogates and NUL as a JSON client would
        headers={"content-type": "application/json"},
    )
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        error = response.json()["data"]["error"]
        assert error["status_code"] == response.status_code
        assert snapshot() == before, (body, response.text)


def _run_property(client: httpx.Client, path: str, strategy: Any, snapshot: Any) -> None:
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
        _check(client, path, body, snapshot)

    submit_anything()


async def _property(
    runtime: Runtime, server: LiveServer, path: str, strategy: Any, key: str
) -> None:
    loop = asyncio.get_running_loop()

    def snapshot() -> Any:
        return asyncio.run_coroutine_threadsafe(money_snapshot(runtime), loop).result(30)

    def run() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.api_url, headers=headers, timeout=30) as client:
            _run_property(client, path, strategy, snapshot)

    await asyncio.to_thread(run)


async def test_any_text_in_any_workflow_submit_field_is_never_a_5xx(runtime, server):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime, balance="1000")
    base = {
        "workflow_id": workflow_id,
        "idempotency_key": "run",
        "inputs": {"n1_image": data_uri(png_bytes(8, 8)), "n6_value": "caption"},
    }
    strategy = submits(base, WORKFLOW_FIELDS)
    await _property(runtime, server, "/workflow/run/submit", strategy, alice.key)


async def test_any_text_in_any_model_run_submit_field_is_never_a_5xx(runtime, server):
    alice = await customer(runtime, balance="1000")
    # The first model run of a server creates the model catalog, refused or not: set up first.
    await model_runs.ensure_catalog(runtime.db, runtime.settings.seedance)
    base = {
        "idempotency_key": "video",
        "inputs": {"model": "doubao-seedance-2-0-fast-260128", "prompt": "a cat", "duration": 5},
    }
    strategy = submits(base, VIDEO_FIELDS)
    await _property(runtime, server, "/model-runs/videos", strategy, alice.key)
