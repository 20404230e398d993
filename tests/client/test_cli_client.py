"""``wfrun-client`` (the console script, in a subprocess) against the live app."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

from tests.client.conftest import Live
from tests.support import factories
from wfrun.runtime import Runtime
from wfrun_client._progress import Display
from wfrun_client.models import RunEvent

SCRIPT = str(Path(sys.executable).parent / "wfrun-client")


async def cli(env: Live, *args: str, code: int = 0, cwd: Path | None = None) -> str:
    """Runs the command with key and base URL from the environment; its stdout."""
    environ = {**os.environ, "WFRUN_BASE_URL": env.server.base_url, "WFRUN_API_KEY": env.key}
    process = await asyncio.create_subprocess_exec(
        SCRIPT, *args, env=environ, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode == code, (out.decode(), err.decode())
    return out.decode()


async def test_run_wait_out_json_end_to_end(live: Live, tmp_path: Path):
    out = await cli(
        live, "run", live.demo, "-i", "n6_value=from the cli", "-i", "n2_width=64",
        "-f", f"n1_image={live.image}", "--wait", "--out", str(tmp_path / "outputs"), "--json",
    )  # fmt: skip
    got = json.loads(out)
    run = got["run"]
    assert run["run_status"] == "succeeded"
    assert run["inputs"]["n2_width"] == 64  # -i values are JSON when they parse as JSON
    assert run["inputs"]["n1_image"].startswith("asset://asset_")  # -f uploaded the file
    poster = Path(got["files"]["n5_images"][0])
    assert poster.read_bytes().startswith(b"\x89PNG")
    assert Path(got["files"]["n7_text"][0]).read_text() == "from the cli"
    assert Decimal(run["final_amount"]) + Decimal(run["released_amount"]) == Decimal(
        run["quote_amount"]
    )
    listed = json.loads(await cli(live, "runs", "list", "--json"))
    assert [r["run_order_id"] for r in listed] == [run["run_order_id"]]
    shown = json.loads(await cli(live, "runs", "show", run["run_order_id"], "--json"))
    assert shown["final_amount"] == run["final_amount"]
    balance = json.loads(await cli(live, "balance", "--json"))
    assert Decimal(balance["available_amount"]) == Decimal(10) - Decimal(run["final_amount"])


async def test_plain_output_logs_each_event_on_its_own_line(live: Live, tmp_path: Path):
    out = await cli(live, "run", live.demo, "-f", f"n1_image={live.image}", "--wait")
    lines = out.splitlines()
    assert lines[0].startswith("submitted wfrun_")
    assert "status succeeded" in lines
    assert "done: succeeded" in lines
    assert any(line.startswith("progress ") for line in lines)
    assert lines[-1].startswith("succeeded: wfrun_")
    assert "\r" not in out  # not a terminal: nothing redrawn


async def test_workflows_quote_and_cancel(idle: Live):
    flows = json.loads(await cli(idle, "workflows", "list", "--json"))
    assert [f["workflow_id"] for f in flows] == [idle.demo]
    shown = await cli(idle, "workflows", "show", idle.demo)
    assert "-i/-f n1_image  image  required" in shown
    quote = json.loads(
        await cli(idle, "quote", idle.demo, "-f", f"n1_image={idle.image}", "--json")
    )
    submitted = json.loads(
        await cli(idle, "run", idle.demo, "-f", f"n1_image={idle.image}", "--json")
    )
    assert submitted["quote_amount"] == quote["quote_amount"]
    assert submitted["run_status"] == "queued"  # no --wait: answers at once
    run_id = submitted["run_order_id"]
    cancelled = await cli(idle, "runs", "cancel", run_id)
    assert cancelled.strip() == f"{run_id}: cancelled (cancelled)"
    queued = json.loads(await cli(idle, "runs", "list", "--status", "queued", "--json"))
    assert queued == []


async def test_errors_exit_1_with_the_envelope_error(idle: Live, runtime: Runtime):
    out = await cli(idle, "runs", "show", "wfrun_00000000000000000000", "--json", code=1)
    assert json.loads(out)["error"]["engine_code"] == "RUN_NOT_FOUND"
    poor = await factories.customer(runtime, balance="0", name="poor")
    broke = Live(idle.server, poor, idle.demo, idle.image)
    out = await cli(broke, "--json", "run", idle.demo, "-i", "n1_image=data:,x", code=1)
    assert json.loads(out)["error"]["status_code"] in (400, 402)
    await cli(idle, "run", idle.demo, "-f", "n1_image=/no/such/file.png", code=1)
    await cli(idle, "run", idle.demo, "-i", "no-equals-sign", code=1)


async def test_a_failed_run_exits_3(idle: Live, runtime: Runtime):
    """A run cancelled while the CLI waits: the CLI reports it and exits 3."""
    environ = {**os.environ, "WFRUN_BASE_URL": idle.server.base_url, "WFRUN_API_KEY": idle.key}
    process = await asyncio.create_subprocess_exec(
        SCRIPT, "run", idle.demo, "-f", f"n1_image={idle.image}", "--wait", env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    first = (await process.stdout.readline()).decode()
    run_id = first.split()[1].rstrip(":")
    await cli(idle, "runs", "cancel", run_id)
    out, _ = await process.communicate()
    assert process.returncode == 3
    assert f"cancelled: {run_id}" in out.decode()


def test_the_terminal_display_redraws_one_status_line():
    screen = io.StringIO()
    display = Display(screen, live=True)
    display(RunEvent(event="status", data={"run_status": "queued"}))
    display(RunEvent(event="queue", data={"position": 3, "estimated_wait_sec": 12.0}))
    assert display.line() == "queued #3 ETA 12s"
    display(RunEvent(event="status", data={"run_status": "running"}))
    display(RunEvent(event="progress", data={"progress_percent": 50, "node_id": "4",
                                             "message": "node 4 done"}))  # fmt: skip
    assert display.line() == "running   ████████████············  50% node 4"
    display.close()
    text = screen.getvalue()
    assert "\r\x1b[2Kprogress 50% node 4: node 4 done\n" in text  # the log line, above
    assert text.endswith("50% node 4\n")
