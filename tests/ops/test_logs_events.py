"""The operator's lines about runs, instances and webhooks (``services.ops_log``), as records
of the ``wfrun.*`` loggers with their fields, on both databases: a retry, a give-up, a health
change of an engine instance, a failed webhook delivery — and nothing for a change that rolled
back (lines about a transaction's writes wait for its commit)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support.api import running_worker
from tests.support.factories import customer, operator, publish_package, sleepy_package
from tests.support.receiver import running_receiver
from tests.webhooks.support import add_endpoint, ok, quick_workflow, settled, submit
from wfrun.clock import utcnow
from wfrun.config import Settings, WebhookSettings
from wfrun.db.runs import Run
from wfrun.domain.money import format_amount
from wfrun.domain.pricing import release
from wfrun.domain.runs import RunStatus
from wfrun.runtime import Runtime
from wfrun.services import claims, instances, run_progress, runs
from wfrun.services.accounts import Principal
from wfrun.services.claims import Claim
from wfrun.services.run_endings import Ending, end_run

LEASE = timedelta(seconds=60)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Receivers on loopback allowed; webhook retries a few milliseconds apart."""
    fast = WebhookSettings(
        allow_networks=["127.0.0.0/8"],
        poll_interval=0.02,
        retry_schedule_seconds=[0.02, 0.02],
        retry_jitter=0.0,
    )
    return settings.model_copy(update={"webhooks": fast})


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    """The records of ``logger``: the event, the level and the ``extra`` fields."""
    standard = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
    return [
        {"event": r.getMessage(), "level": r.levelname}
        | {k: v for k, v in r.__dict__.items() if k not in standard}
        for r in caplog.records
        if r.name == logger
    ]


async def _submitted(rt: Runtime) -> tuple[Principal, Run]:
    workflow_id = await publish_package(rt, await operator(rt), sleepy_package())
    alice = await customer(rt, balance="1")
    principal = Principal(alice.account_id, "key_test", "alice")
    request = runs.RunRequest(workflow_id, None, {}, idempotency_key="k")
    return principal, (await runs.submit_run(rt.db, principal, request, rt.policy)).run


async def test_a_retry_and_a_give_up_are_logged_with_the_run(runtime, caplog):
    caplog.set_level(logging.INFO)
    principal, run = await _submitted(runtime)
    first = await claims.claim_next(runtime.db, worker_id="w", lease=LEASE)
    assert isinstance(first, Claim)
    delay = timedelta(0)
    assert await run_progress.retry_later(runtime.db, first, delay=delay, error="engine restarting")
    while (claimed := await claims.claim_next(runtime.db, worker_id="w", lease=delay)) != "settled":
        assert isinstance(claimed, Claim)  # each later attempt's worker "dies" at once
    ident = {"run_order_id": run.id, "account_id": principal.account_id}
    logged = [line for line in lines(caplog, "wfrun.runs") if line["run_order_id"] == run.id]
    assert [(x["event"], x.get("status")) for x in logged] == [
        ("run status changed", "queued"),
        ("run status changed", "running"),
        ("run retry scheduled", None),
        ("run gave up", None),
        ("run settled", None),  # the freeze resolves before the change is published
        ("run status changed", "failed"),
    ]
    retry, gave_up, settled, failed = logged[2:]
    assert {
        k: retry[k] for k in (*ident, "level", "attempt", "error", "delay_seconds")
    } == ident | {
        "level": "WARNING",
        "attempt": 1,
        "error": "engine restarting",
        "delay_seconds": 0.0,
    }
    assert {k: gave_up[k] for k in (*ident, "level", "attempts", "error_code")} == ident | {
        "level": "WARNING",
        "attempts": runtime.policy.max_attempts,
        "error_code": "ENGINE_UNAVAILABLE",
    }
    assert (failed["level"], failed["error_code"], failed["previous_status"]) == (
        "WARNING",
        "ENGINE_UNAVAILABLE",
        "running",
    )
    quote = format_amount(run.quote_amount)
    assert {
        k: settled[k] for k in ("freeze_status", "frozen", "final_amount", "released_amount")
    } == {
        "freeze_status": "released",
        "frozen": quote,
        "final_amount": "0.00000000",
        "released_amount": quote,
    }


class _Abort(Exception):
    pass


async def test_a_change_that_rolled_back_is_not_logged(runtime, caplog):
    caplog.set_level(logging.INFO)
    _, run = await _submitted(runtime)
    ending = Ending(RunStatus.CANCELLED, release(run.quote_amount), "cancelled")

    async def end_then_abort() -> None:
        async with runtime.db.transaction(write=True) as conn:
            assert await end_run(conn, run, ending, now=utcnow()) is not None
            raise _Abort

    with pytest.raises(_Abort):
        await end_then_abort()
    assert [x["status"] for x in lines(caplog, "wfrun.runs") if x["run_order_id"] == run.id] == [
        "queued"
    ]


async def test_instance_health_changes_are_logged_once_each(runtime, caplog):
    caplog.set_level(logging.INFO)
    added = await instances.add_instance(
        runtime.db, url="http://127.0.0.1:9", capacity=1, labels={}
    )
    slow, refused = "ReadTimeout: slow", "ConnectError: refused"
    probes: list[tuple[bool, str | None, bool]] = [
        (False, slow, False),
        (False, slow, False),
        (False, slow, False),  # the third in a row: unhealthy
        (False, slow, False),  # still unhealthy: no new line
        (True, None, False),  # back
        (True, None, False),
        (False, refused, True),  # down at once
    ]
    for ok_, error, down in probes:
        await instances.record_probe(runtime.db, added.id, ok=ok_, error=error, down=down)
    fields = ("event", "level", "instance_id", "url", "healthy", "why")
    assert [{k: x[k] for k in fields} for x in lines(caplog, "wfrun.instances")] == [
        {
            "event": "instance unhealthy",
            "level": "WARNING",
            "instance_id": added.id,
            "url": "http://127.0.0.1:9",
            "healthy": False,
            "why": f"{instances.UNHEALTHY_AFTER} probes in a row failed",
        },
        {
            "event": "instance healthy again",
            "level": "INFO",
            "instance_id": added.id,
            "url": "http://127.0.0.1:9",
            "healthy": True,
            "why": "a probe got an answer again",
        },
        {
            "event": "instance unhealthy",
            "level": "WARNING",
            "instance_id": added.id,
            "url": "http://127.0.0.1:9",
            "healthy": False,
            "why": "it refused or dropped the connection",
        },
    ]


async def test_failed_webhook_deliveries_are_logged_until_given_up(
    runtime: Runtime, http: httpx.AsyncClient, caplog
):
    caplog.set_level(logging.INFO)
    workflow = await quick_workflow(runtime)
    alice = await customer(runtime)
    with running_receiver(failures_first=100) as receiver:
        endpoint = await add_endpoint(http, alice, receiver.url, ["run.succeeded"])
        run_id = ok(await submit(http, alice, workflow, "k1"))["run_order_id"]
        async with running_worker(runtime):
            [delivery] = await settled(http, alice, run_order_id=run_id)
    assert delivery["status"] == "failed"
    failures = lines(caplog, "wfrun.webhooks")
    fields = ("run_order_id", "account_id", "event_type", "target", "status_code", "error")
    assert {tuple(x[k] for k in fields) for x in failures} == {
        (
            run_id,
            alice.account_id,
            "run.succeeded",
            f"endpoint:{endpoint['endpoint_id']}",
            500,
            "receiver answered HTTP 500",
        )
    }
    assert [(x["attempt"], x["gave_up"], x["level"]) for x in failures] == [
        (1, False, "WARNING"),
        (2, False, "WARNING"),
        (3, True, "WARNING"),
    ]
