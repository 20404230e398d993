"""wfrun's added latency over talking to a ComfyUI server directly, on PostgreSQL.

    .venv/bin/python -m benchmarks.comfyui_latency [--runs 30]

Both paths run the same EmptyImage → ImageInvert → SaveImage prompt on the same ComfyUI
stand-in (loopback). Direct: POST /prompt, then poll /history until the entry appears, then GET
/view of the output. Through wfrun: POST /workflow/run/submit, poll /workflow/run/execution
until ``succeeded`` (20 ms polls), then download the output link; the API and one worker run
in-process (``wfrun serve`` shape) with LISTEN/NOTIFY wake-ups. Prints medians and p95, and the
difference: what wfrun adds (queueing, dispatch, bookkeeping, settlement, storage).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from tests.comfyui.standin import ComfyStandin
from tests.conftest import make_settings
from tests.support.databases import create_pg_database, drop_pg_database, pg_url
from tests.support.factories import customer, operator
from tests.support.server import start_server

from wfrun.runtime import build_runtime
from wfrun.services import catalog, instances

GRAPH: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 255},
    },
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "b"}},
}
PACKAGE: dict[str, Any] = {
    "format": "wfrun.workflow/v1",
    "slug": "bench",
    "title": "bench",
    "engine": "comfyui",
    "graph": GRAPH,
    "inputs": [{"key": "n1_color", "type": "integer", "default_value": 0}],
    "outputs": [{"key": "n3_images", "type": "image", "multiple": True}],
    "pricing": {"fixed_fee": "0.01", "estimated_seconds": 1},
}


async def direct(base: str, n: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=base) as client:
        for i in range(n):
            graph = {**GRAPH, "1": {**GRAPH["1"], "inputs": {**GRAPH["1"]["inputs"], "color": i}}}
            started = time.perf_counter()
            prompt_id = str(uuid.uuid4())
            await client.post("/prompt", json={"prompt": graph, "prompt_id": prompt_id})
            while not (entry := (await client.get(f"/history/{prompt_id}")).json()):
                await asyncio.sleep(0.02)
            image = entry[prompt_id]["outputs"]["3"]["images"][0]
            await client.get("/view", params=image)
            times.append(time.perf_counter() - started)
    return times


async def through_wfrun(url: str, base: str, n: int, data_dir: Path) -> list[float]:
    rt = await build_runtime(make_settings(url, data_dir))
    await instances.add_instance(rt.db, url=base, capacity=1, labels={})
    owner = await operator(rt)
    workflow_id = (
        await catalog.import_package(rt.db, owner_id=owner, document=PACKAGE, publish=True)
    ).workflow_id
    alice = await customer(rt, balance="1000")
    times = []
    async with (
        start_server(rt, embedded_worker=True) as live,
        httpx.AsyncClient(base_url=live.api_url, headers=alice.headers) as http,
    ):
        for i in range(n):
            started = time.perf_counter()
            body = {
                "workflow_id": workflow_id,
                "idempotency_key": f"b{i}",
                "inputs": {"n1_color": 1000 + i},
            }
            run = (await http.post("/workflow/run/submit", json=body)).json()["data"]
            while True:
                view = (
                    await http.get(
                        "/workflow/run/execution", params={"run_order_id": run["run_order_id"]}
                    )
                ).json()
                if view["data"]["status"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.02)
            await http.get(view["data"]["outputs"]["n3_images"][0])
            times.append(time.perf_counter() - started)
    await rt.close()
    return times


def _line(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=20)
    return (
        f"{name:<22} median {statistics.median(times) * 1000:7.1f} ms   p95 {q[18] * 1000:7.1f} ms"
    )


async def main(n: int) -> None:
    name = f"wfrun_bench_{uuid.uuid4().hex[:8]}"
    await create_pg_database(name)
    with tempfile.TemporaryDirectory() as tmp:
        comfy = ComfyStandin(Path(tmp) / "comfy")
        comfy.launch()
        try:
            await direct(comfy.base_url, 3)  # warm-up
            direct_times = await direct(comfy.base_url, n)
            wfrun_times = await through_wfrun(pg_url(name), comfy.base_url, n, Path(tmp) / "d")
        finally:
            comfy.shutdown()
            await drop_pg_database(name)
    print(f"{n} runs each, one ComfyUI stand-in on loopback, PostgreSQL")
    print(_line("direct to ComfyUI", direct_times))
    print(_line("through wfrun", wfrun_times))
    added = statistics.median(wfrun_times) - statistics.median(direct_times)
    print(f"wfrun adds (median)     {added * 1000:7.1f} ms per run")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    asyncio.run(main(parser.parse_args().runs))
