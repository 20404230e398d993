"""Retries through a proxy that loses answers: a submit whose answer is lost after the server
acted is resent with the same idempotency key and never makes a second run; 503/429 are
retried after ``Retry-After``; an upload is not repeated after it may have been processed;
a 4xx is never retried."""

from __future__ import annotations

import asyncio

import pytest

import wfrun_client
from tests.client.conftest import Live
from tests.client.proxy import proxy_to
from tests.support import factories
from wfrun.runtime import Runtime
from wfrun_client import AsyncClient, Client, RetryPolicy

FAST = RetryPolicy(max_retries=3, backoff=0.01, max_backoff=0.05)


async def _run_count(runtime: Runtime) -> int:
    return int((await factories.money_snapshot(runtime))["counts"]["runs"])


async def test_a_lost_submit_answer_is_retried_with_the_same_key_and_one_run(
    idle: Live, runtime: Runtime
):
    async with (
        proxy_to(idle.server.base_url) as proxy,
        AsyncClient(proxy.base_url, idle.key, retry=FAST) as client,
    ):
        uri = (await client.assets.upload(idle.image)).asset_uri
        proxy.drop("/workflow/run/submit", times=2)
        run = await client.runs.submit(idle.demo, {"n1_image": uri})

    assert proxy.attempts("/workflow/run/submit") == 3
    assert run.idempotent_replay is True  # the third attempt found the run the first made
    assert await _run_count(runtime) == 1
    frozen = (await factories.account_balance(runtime, idle.customer.account_id))[1]
    assert frozen == int(run.quote_amount * 10**8)


def _sync_submit(base_url: str, env: Live) -> wfrun_client.models.SubmitResult:
    with Client(base_url, env.key, retry=FAST) as client:
        uri = client.assets.upload(env.image).asset_uri
        return client.runs.submit(env.demo, {"n1_image": uri}, idempotency_key="mine")


async def test_the_sync_client_retries_the_same_way(idle: Live, runtime: Runtime):
    async with proxy_to(idle.server.base_url) as proxy:
        proxy.drop("/workflow/run/submit")
        run = await asyncio.to_thread(_sync_submit, proxy.base_url, idle)
    assert (run.idempotent_replay, run.idempotency_key) == (True, "mine")
    assert proxy.attempts("/workflow/run/submit") == 2
    assert await _run_count(runtime) == 1


@pytest.mark.parametrize("status", [503, 429])
async def test_busy_answers_are_retried_after_retry_after(idle: Live, runtime: Runtime, status):
    async with (
        proxy_to(idle.server.base_url) as proxy,
        AsyncClient(proxy.base_url, idle.key, retry=FAST) as client,
    ):
        uri = (await client.assets.upload(idle.image)).asset_uri
        proxy.busy("/workflow/run/submit", times=2, status=status, retry_after="0")
        run = await client.runs.submit(idle.demo, {"n1_image": uri})
        assert run.idempotent_replay is False
        proxy.busy("/balance/info", times=9, status=status, retry_after="0")
        with pytest.raises(
            wfrun_client.ServiceUnavailable if status == 503 else wfrun_client.RateLimited
        ) as caught:
            await client.account.balance()

    assert caught.value.retry_after == 0
    assert proxy.attempts("/workflow/run/submit") == 3
    assert proxy.attempts("/balance/info") == 1 + FAST.max_retries  # bounded
    assert await _run_count(runtime) == 1


async def test_an_upload_is_not_repeated_once_it_may_have_been_processed(idle: Live):
    async with proxy_to(idle.server.base_url) as proxy:
        proxy.drop("/assets")
        async with AsyncClient(proxy.base_url, idle.key, retry=FAST) as client:
            with pytest.raises(wfrun_client.ConnectionFailed):
                await client.assets.upload(idle.image)
            proxy.busy("/assets", times=1)  # 503: nothing was done, so it is retried
            asset = await client.assets.upload(idle.image)
    assert asset.asset_uri.startswith("asset://asset_")
    assert proxy.attempts("/assets") == 3


async def test_client_errors_are_not_retried(idle: Live):
    async with (
        proxy_to(idle.server.base_url) as proxy,
        AsyncClient(proxy.base_url, idle.key, retry=FAST) as client,
    ):
        with pytest.raises(wfrun_client.InvalidRequest):
            await client.runs.submit(idle.demo, {"nope": 1})

    assert proxy.attempts("/workflow/run/submit") == 1


async def test_an_unreachable_server_fails_after_the_bounded_attempts(unused_tcp_port: int):
    async with AsyncClient(f"http://127.0.0.1:{unused_tcp_port}", "k", retry=FAST) as client:
        with pytest.raises(wfrun_client.ConnectionFailed, match="ConnectError"):
            await client.account.balance()
