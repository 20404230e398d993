"""ComfyUIEngine against the stand-in: cancelling pending and running prompts."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.comfyui.helpers import RecordingSink, sleepy, spec_for, trivial
from tests.comfyui.standin import ComfyStandin
from wfrun.engines.base import EngineInterrupted
from wfrun.engines.comfyui import ComfyUIEngine


async def test_cancel_while_pending_deletes_it_from_the_queue(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    first_sink = RecordingSink()
    first = spec_for(standin, sleepy(1.0, "wf_first"))
    running = asyncio.create_task(engine.execute(first, first_sink, threading.Event()))
    while len(first_sink.calls) < 3:
        await asyncio.sleep(0.01)
    second, interrupt = spec_for(standin, trivial()), threading.Event()
    pending = asyncio.create_task(engine.execute(second, RecordingSink(), interrupt))
    await standin.wait_for(
        lambda state: [i.prompt_id for i in state.pending()] == [second.engine_prompt_id]
    )
    interrupt.set()
    with pytest.raises(EngineInterrupted):
        await pending
    assert {"delete": [second.engine_prompt_id]} in [
        r.json() for r in standin.calls("POST", "/queue")
    ]
    assert not standin.calls("POST", "/interrupt")
    assert (await running)["3"].files  # the running prompt was left alone
    assert await standin.call(lambda state: second.engine_prompt_id not in state.history)


async def test_cancel_while_running_interrupts_it(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    sink, interrupt = RecordingSink(), threading.Event()
    spec = spec_for(standin, sleepy(5.0))
    task = asyncio.create_task(engine.execute(spec, sink, interrupt))
    while ("started", "2", "TestSleep", 1, 3) not in sink.calls:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    interrupt.set()
    with pytest.raises(EngineInterrupted):
        await task
    assert time.monotonic() - started < 1.5
    assert [r.json() for r in standin.calls("POST", "/interrupt")] == [
        {"prompt_id": spec.engine_prompt_id}
    ]
    assert not standin.calls("POST", "/queue")
    entry = await standin.call(lambda state: state.history[str(spec.engine_prompt_id)])
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


async def test_interrupt_before_dispatch_submits_nothing(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    interrupt = threading.Event()
    interrupt.set()
    with pytest.raises(EngineInterrupted):
        await engine.execute(spec_for(standin, trivial()), RecordingSink(), interrupt)
    assert not standin.calls("POST", "/prompt")


async def test_cancelled_task_withdraws_the_prompt(
    standin: ComfyStandin, engine: ComfyUIEngine
) -> None:
    sink = RecordingSink()
    spec = spec_for(standin, sleepy(5.0))
    task = asyncio.create_task(engine.execute(spec, sink, threading.Event()))
    while len(sink.calls) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await standin.wait_for(lambda state: spec.engine_prompt_id in state.history, timeout=3)
    assert {"prompt_id": spec.engine_prompt_id} in [
        r.json() for r in standin.calls("POST", "/interrupt")
    ]
