"""The SDK's spending caps against the real app: ``max_cost`` on quote and submit, and the two
refusals as their own exception classes (still caught by their category's class); nothing is
frozen by either."""

from __future__ import annotations

import pytest

from tests.client.conftest import Live
from tests.support import factories
from wfrun.domain.money import format_amount, parse_amount
from wfrun.runtime import Runtime
from wfrun.services import accounts, spending
from wfrun_client import (
    AsyncClient,
    InsufficientBalance,
    InvalidRequest,
    MaxCostExceeded,
    SpendLimitExceeded,
)

INPUTS = {"n1_image": factories.data_uri(factories.png_bytes())}


def _client(env: Live) -> AsyncClient:
    return AsyncClient(base_url=env.server.base_url, api_key=env.key)


async def test_max_cost_below_the_quote_raises_max_cost_exceeded(idle: Live, runtime: Runtime):
    async with _client(idle) as client:
        quoted = parse_amount(
            (await client.runs.quote(idle.demo, INPUTS, max_cost=None)).quote_amount
        )
        below = format_amount(quoted - 1)
        before = await factories.money_snapshot(runtime)
        for call in (
            client.runs.quote(idle.demo, INPUTS, max_cost=below),
            client.runs.submit(idle.demo, INPUTS, max_cost=below),
        ):
            with pytest.raises(MaxCostExceeded) as caught:
                await call
            assert isinstance(caught.value, InvalidRequest)
            assert caught.value.engine_code == "MAX_COST_EXCEEDED"
            assert f"above max_cost {below} CNY" in caught.value.detail
        assert await factories.money_snapshot(runtime) == before
        submitted = await client.runs.submit(idle.demo, INPUTS, max_cost=format_amount(quoted))
        assert submitted.run_order_id
        await client.runs.cancel(submitted.run_order_id)


async def test_a_spend_limit_raises_spend_limit_exceeded(idle: Live, runtime: Runtime):
    key_id = (await accounts.list_keys(runtime.db, idle.customer.account_id))[0].id
    await spending.set_key_limit(runtime.db, key_id, 0, "day")
    before = await factories.money_snapshot(runtime)
    async with _client(idle) as client:
        with pytest.raises(SpendLimitExceeded) as caught:
            await client.runs.submit(idle.demo, INPUTS)
    assert isinstance(caught.value, InsufficientBalance)
    assert caught.value.status_code == 402
    assert await factories.money_snapshot(runtime) == before
