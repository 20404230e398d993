"""The ComfyUI stand-in of the tests in a process of its own, for ``benchmarks.engine_latency``.

    python -m benchmarks.comfy_process <root>

ComfyUI is a process of its own beside wfrun; so is its stand-in here. Hosted on a thread of the
load generator, it shared that process's GIL with the client polling ``run/execution``, and its
answers to wfrun (``/view`` of the output) waited on the poller — a cost of the benchmark, not of
wfrun, that only the through-wfrun runs paid (the direct client waits on its WebSocket).

It prints ``url <base_url> <port>`` once it listens, then one line per stamp, ``<event>
<prompt_id> <perf_counter>``: when it sends ``execution_start`` and ``executing(null)`` (history
written). ``time.perf_counter`` is ``CLOCK_MONOTONIC`` on Linux, one clock for every process of
the machine. It stops when its standard input closes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from tests.comfyui.standin import ComfyStandin
from tests.comfyui.standin_state import StandinState

START, DONE = "start", "done"


def stamp(state: StandinState) -> None:
    """Wraps the stand-in's event sender (a benchmark may; tests never patch)."""
    send = state.send

    async def stamped(event: str, data: dict[str, Any], sid: str | None) -> None:
        prompt_id = data.get("prompt_id")
        if event == "execution_start" and isinstance(prompt_id, str):
            _print(START, prompt_id)
        elif event == "executing" and data.get("node") is None and isinstance(prompt_id, str):
            _print(DONE, prompt_id)
        await send(event, data, sid)

    state.send = stamped  # type: ignore[method-assign]


def _print(kind: str, prompt_id: str) -> None:
    sys.stdout.write(f"{kind} {prompt_id} {time.perf_counter():.6f}\n")
    sys.stdout.flush()


def main(root: Path) -> None:
    standin = ComfyStandin(root)
    standin.launch()
    try:
        asyncio.run(standin.call(stamp))
        print(f"url {standin.base_url} {standin.port}", flush=True)
        sys.stdin.read()
    finally:
        standin.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
