"""Issue 11: a cancel charges only engine time, for every engine, never time spent waiting.

Before, a cancel charged the worker's wall time since the claim: a prompt pending in
ComfyUI's queue behind another, never executed, was charged its wait; a local run cancelled
while its media were still being fetched was charged the fetch. Now a cancel is charged what
the engine measured: ComfyUI's own clock (``execution_start`` → ``execution_interrupted``,
0 when the prompt never started), the local engine's own execution time (0 when it never
started). Exact amounts: the stand-in's clock is stopped and moved by the test, and a run that
never executed is charged exactly nothing (a cancel never pays the fixed fee).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.comfyui.helpers import FAST
from tests.comfyui.standin import ComfyStandin
from tests.support import api
from tests.support import money as m
from tests.support.factories import (
    Customer,
    customer,
    operator,
    png_bytes,
    publish_demo,
    sleepy_package,
)
from tests.support.money import cny
from tests.support.waiting import until
from wfrun.domain.money import format_amount, parse_amount
from wfrun.engines.comfyui import ComfyUIEngine
from wfrun.fetch import FetchPolicy, SafeFetcher
from wfrun.runtime import Runtime
from wfrun.services import catalog, instances
from wfrun.services.claims import engine_prompt_id

FEE, PER_SECOND, ESTIMATED_S = cny("0.37"), cny("0.01234567"), 20
QUOTE = FEE + PER_SECOND * ESTIMATED_S


async def _comfy_workflow(rt: Runtime, standin: ComfyStandin) -> str:
    await rt.engines["comfyui"].aclose()  # type: ignore[attr-defined]
    rt.engines["comfyui"] = ComfyUIEngine("wfrun-cancel-billing", settings=FAST)
    await instances.add_instance(rt.db, url=standin.base_url, capacity=2, labels={})
    package = sleepy_package(seconds=0)
    package.update(engine="comfyui", slug="priced")
    package["pricing"] = {
        "fixed_fee": format_amount(FEE),
        "price_per_second": format_amount(PER_SECOND),
        "estimated_seconds": ESTIMATED_S,
    }
    result = await catalog.import_package(
        rt.db, owner_id=await operator(rt), document=package, publish=True
    )
    return result.workflow_id


async def _cancel(http: httpx.AsyncClient, who: Customer, run_id: str) -> dict[str, object]:
    assert (await api.cancel(http, who, run_id))["cancel_outcome"] == "cancel_requested"
    return await api.wait_status(http, who, run_id)


async def test_a_prompt_pending_on_the_instance_is_charged_nothing(runtime, http, standin):
    workflow_id = await _comfy_workflow(runtime, standin)
    standin.clock.stop()
    alice = await customer(runtime, balance="10")
    await standin.hold(running=True)  # the first prompt stops at its first node
    async with api.running_worker(runtime):
        first = (await api.submit(http, alice, workflow_id, "first"))["run_order_id"]
        await standin.wait_held(engine_prompt_id(first))
        second = (await api.submit(http, alice, workflow_id, "second"))["run_order_id"]
        await standin.wait_pending(engine_prompt_id(second))  # behind the first, never started
        pending = await _cancel(http, alice, second)
        standin.clock.advance(2_468)  # the first executes 2.468 s by ComfyUI's clock
        running = await _cancel(http, alice, first)
    assert (pending["status"], running["status"]) == ("cancelled", "cancelled")
    assert pending["actual_execution_duration_sec"] == 0
    never_ran = m.cancelled_running(quote=QUOTE, price_per_second=PER_SECOND, execution_ms=0)
    assert never_ran.final == 0  # no compute, and a cancel never pays the fixed fee
    m.assert_bill(await api.info(http, alice, second), never_ran)
    assert running["actual_execution_duration_sec"] == 2.468
    used = m.cancelled_running(quote=QUOTE, price_per_second=PER_SECOND, execution_ms=2_468)
    assert used.final == cny("0.03046911")  # 0.01234567 × 2.468 = 0.030469113…, half up
    m.assert_bill(await api.info(http, alice, first), used)
    shown = await api.balance(http, alice)
    assert (shown["available_amount"], shown["frozen_amount"]) == (
        format_amount(cny("10") - used.final),
        format_amount(0),
    )


@dataclass
class HeldImage:
    """A loopback image server that answers only when the test releases it."""

    body: bytes = field(default_factory=png_bytes)
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.asked.set()
        await self.go.wait()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(self.body)}"
        writer.write(head.encode() + b"\r\nConnection: close\r\n\r\n" + self.body)
        await writer.drain()
        writer.close()


@pytest.fixture
async def held_image(runtime: Runtime) -> AsyncIterator[HeldImage]:
    image = HeldImage()
    server = await asyncio.start_server(image.handle, "127.0.0.1", 0)
    image.port = server.sockets[0].getsockname()[1]
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    runtime.fetcher = SafeFetcher(FetchPolicy(allow_networks=loopback, timeout_seconds=30.0))
    async with server:
        yield image
        image.go.set()


async def test_a_local_run_cancelled_while_fetching_its_media_is_charged_nothing(
    runtime, http, held_image
):
    workflow_id = (await publish_demo(runtime, await operator(runtime))).workflow_id
    alice = await customer(runtime, balance="10")
    inputs = {"n1_image": f"http://127.0.0.1:{held_image.port}/in.png", "n2_width": 60}
    async with api.running_worker(runtime) as worker:
        run_id = (await api.submit(http, alice, workflow_id, "fetching", inputs))["run_order_id"]
        await asyncio.wait_for(held_image.asked.wait(), 30)  # claimed, fetching its image
        assert (await api.cancel(http, alice, run_id))["cancel_outcome"] == "cancel_requested"

        async def heard() -> bool:  # the worker's heartbeat passed the cancel to the run
            active = worker._active.get(run_id)
            return active is not None and active.control.interrupt.is_set()

        await until(heard, what="the cancel to reach the running run")
        held_image.go.set()  # the fetch completes; the engine never starts
        view = await api.wait_status(http, alice, run_id)
    assert view["status"] == "cancelled"
    assert view["actual_execution_duration_sec"] == 0
    info = await api.info(http, alice, run_id)
    quote = parse_amount(info["quote_amount"])
    m.assert_bill(info, m.released(quote))  # the fetch was waiting, not compute
