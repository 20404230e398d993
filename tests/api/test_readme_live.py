"""The README's "Live runs" Python examples, run as written against a live server: the SSE
follower prints a run's events and returns its ``run/info``; the waiting submit answers with
the ended run."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import running_worker, submit
from tests.support.factories import customer, data_uri, operator, png_bytes, publish_demo
from tests.support.server import LiveServer
from wfrun.runtime import Runtime

README = Path(__file__).parents[2] / "README.md"


def _python_blocks() -> list[str]:
    text = README.read_text().split("## Live runs", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


async def test_the_readme_live_examples_work(
    runtime: Runtime,
    server: LiveServer,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    follow_block, wait_block = _python_blocks()
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime, balance="5")
    image = data_uri(png_bytes(16, 8))
    run = await submit(http, alice, workflow_id, "readme", {"n1_image": image})
    for name, value in {"WFRUN": server.api_url, "KEY": alice.key, "WF": workflow_id}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ASSET", image)
    namespace: dict[str, Any] = {}
    exec(follow_block, namespace)  # noqa: S102 - the documented example itself
    async with running_worker(runtime):
        info = await asyncio.to_thread(namespace["follow"], run["run_order_id"])
        assert info["run_status"] == "succeeded"
        assert info["run_order_id"] == run["run_order_id"]
        await asyncio.to_thread(exec, wait_block, {})
    printed = capsys.readouterr().out
    assert "status queued" in printed
    assert "done succeeded" in printed
    assert printed.strip().splitlines()[-1].startswith("succeeded {")
