"""Helpers of the ComfyUI engine tests: graphs, specs, a recording sink, PNG bytes."""

from __future__ import annotations

import io
import threading
import uuid
from dataclasses import replace
from typing import Any

from PIL import Image

from tests.comfyui.standin import ComfyStandin
from tests.support.waiting import until_true
from wfrun.engines.base import NodeResult, RunSpec
from wfrun.engines.comfyui.channel import ChannelSettings
from wfrun.engines.comfyui.session import ComfyUISettings
from wfrun.engines.local.engine import LocalEngine

FAST = ComfyUISettings(
    channel=ChannelSettings(open_timeout=2.0, min_backoff=0.05, max_backoff=0.5),
    poll_interval=0.5,
    orphan_poll_interval=0.1,
    unreachable_grace=2.0,
    history_retry=1.0,
    cancel_timeout=3.0,
)
"""Short timings so that every test stays well under 10 s."""

PATIENT = replace(FAST, unreachable_grace=3600.0, cancel_timeout=3600.0)
"""FAST, but never giving up on its own within a test: a test whose point is not those timers
(an interruption that must be confirmed, a restart that must be noticed) cannot pass by
waiting them out; a broken engine shows as the test's deadline passing."""

Graph = dict[str, Any]


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def trivial(prefix: str = "wf_trivial", color: int = 0xFF0000) -> Graph:
    """EmptyImage → ImageInvert → SaveImage (the captured trivial graph)."""
    return {
        "1": node("EmptyImage", width=64, height=48, batch_size=1, color=color),
        "2": node("ImageInvert", image=["1", 0]),
        "3": node("SaveImage", images=["2", 0], filename_prefix=prefix),
    }


def sleepy(seconds: float, prefix: str = "wf_sleep") -> Graph:
    """EmptyImage → TestSleep → SaveImage."""
    return {
        "1": node("EmptyImage", width=16, height=16, batch_size=1, color=0),
        "2": node("TestSleep", value=["1", 0], seconds=seconds),
        "3": node("SaveImage", images=["2", 0], filename_prefix=prefix),
    }


def load_and_save(image_name: str, prefix: str = "wf_loaded") -> Graph:
    """LoadImage → ImageScale → SaveImage."""
    return {
        "10": node("LoadImage", image=image_name),
        "11": node(
            "ImageScale",
            image=["10", 0],
            upscale_method="bilinear",
            width=8,
            height=8,
            crop="disabled",
        ),
        "12": node("SaveImage", images=["11", 0], filename_prefix=prefix),
    }


def png(width: int = 4, height: int = 4, color: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def spec_for(
    standin: ComfyStandin,
    graph: Graph,
    *,
    media: dict[str, bytes] | None = None,
    prompt_id: str | None = None,
    timeout: float = 8.0,
) -> RunSpec:
    return RunSpec(
        run_id="run-" + uuid.uuid4().hex[:8],
        attempt=1,
        graph=graph,
        media=media or {},
        target=standin.base_url,
        engine_prompt_id=prompt_id or str(uuid.uuid4()),
        timeout_seconds=timeout,
    )


class RecordingSink:
    """A ProgressSink that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, int, int]] = []

    async def node_started(self, node_id: str, class_type: str, index: int, total: int) -> None:
        self.calls.append(("started", node_id, class_type, index, total))

    async def node_finished(self, node_id: str, class_type: str, index: int, total: int) -> None:
        self.calls.append(("finished", node_id, class_type, index, total))

    def finished(self) -> list[str]:
        return [call[1] for call in self.calls if call[0] == "finished"]


async def run_locally(graph: Graph, media: dict[str, bytes] | None = None) -> dict[str, NodeResult]:
    """The same graph on wfrun's local engine (the reference outputs)."""
    spec = RunSpec(run_id="local", attempt=1, graph=graph, media=media or {})
    return await LocalEngine().execute(spec, RecordingSink(), threading.Event())


async def held_at(
    standin: ComfyStandin, spec: RunSpec, sink: RecordingSink, node_id: str = "2"
) -> None:
    """Waits until the stand-in holds ``spec``'s prompt before ``node_id`` (see
    ``standin.hold``) and the engine has reported that node started: then no event of the
    prompt is still on its way, and nothing more comes until the test acts."""
    await standin.wait_held(spec.engine_prompt_id)
    await until_true(
        lambda: any(call[:2] == ("started", node_id) for call in sink.calls),
        what=f"the engine to report node {node_id} started",
    )
