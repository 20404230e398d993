"""``wfrun_webhook_deliveries_total`` counts each delivery attempt by outcome, exactly as the
receiver saw them (a real receiver on loopback, failing each message's first attempt)."""

from __future__ import annotations

import httpx
import pytest

from tests.ops.test_metrics import scrape, value
from tests.support.api import running_worker, wait_status
from tests.support.factories import customer
from tests.support.receiver import running_receiver
from tests.support.waiting import until
from tests.webhooks.conftest import FAST
from tests.webhooks.support import add_endpoint, ok, quick_workflow, submit
from wfrun.config import Settings
from wfrun.runtime import Runtime


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks": FAST})


async def test_webhook_attempts_by_outcome(runtime: Runtime, server, http: httpx.AsyncClient):
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver(failures_first=1) as receiver:
        await add_endpoint(http, alice, receiver.url)
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):
            await wait_status(http, alice, run_id)

            async def counted() -> tuple[float, float] | None:
                samples = await scrape(server.base_url)
                found = tuple(
                    value(samples, "wfrun_webhook_deliveries_total", outcome=outcome)
                    for outcome in ("delivered", "rejected")
                )
                changes = len(receiver.successes)
                return found if changes >= 3 and found == (changes, changes) else None

            delivered, rejected = await until(counted, what="every attempt counted")
    answered = [item.answered for item in receiver.received]
    assert (delivered, rejected) == (answered.count(200), answered.count(500))
    assert delivered == len(receiver.successes)  # each message: one refusal, then delivered
    samples = await scrape(server.base_url)
    assert value(samples, "wfrun_webhook_deliveries_total", outcome="unreachable") == 0
