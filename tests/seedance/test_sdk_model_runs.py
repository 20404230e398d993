"""The SDK's ``model_runs`` against the live app with Seedance on the Ark stand-in: submit
(its idempotency key made by the SDK and kept across a lost answer), get, cancel."""

from __future__ import annotations

from decimal import Decimal

import pytest

import wfrun_client
from tests.client.proxy import proxy_to
from tests.seedance.test_model_runs import FAST, QUOTE
from tests.support.factories import customer
from tests.support.server import LiveServer
from wfrun.domain.money import format_amount
from wfrun.runtime import Runtime
from wfrun_client import AsyncClient, RetryPolicy

INPUTS = {
    "model": FAST,
    "prompt": "一只小猫对着镜头打哈欠",
    "images": [{"uri": "https://cdn.example.com/cat.png", "role": "reference_image"}],
    "duration": 5,
    "resolution": "720p",
    "ratio": "16:9",
}


async def test_model_runs_submit_get_cancel(runtime: Runtime, server: LiveServer):
    who = await customer(runtime, balance="10")
    retry = RetryPolicy(backoff=0.01)
    async with (
        proxy_to(server.base_url) as proxy,
        AsyncClient(proxy.base_url, who.key, retry=retry) as client,
    ):
        proxy.drop("/model-runs/videos")
        run = await client.model_runs.videos(INPUTS)
        assert proxy.attempts("/model-runs/videos") == 2
        assert run.idempotent_replay is True  # the retry found the task the first attempt made
        assert run.frozen_amount == Decimal(format_amount(QUOTE))
        assert (await client.model_runs.get(run.run_id)).status == "created"
        cancelled = await client.model_runs.cancel(run.run_id)
        assert (cancelled.status, cancelled.settlement_status) == ("cancelled", "released")
        assert cancelled.cancel_outcome == "cancelled"
        assert cancelled.released_amount == run.frozen_amount
        balance = await client.account.balance()
        assert (balance.available_amount, balance.frozen_amount) == (Decimal(10), Decimal(0))
        with pytest.raises(wfrun_client.NotFound) as caught:
            await client.model_runs.get("modelrun_0000000000000000000_00000000")
    assert caught.value.status_code == 404
