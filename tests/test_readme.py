"""The README's walkthrough, run verbatim with bash against a live `wfrun serve`."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import databases
from wfrun.db.database import Database
from wfrun.domain.money import parse_amount

ROOT = Path(__file__).parents[1]


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


async def _start_serve(
    env: dict[str, str], cwd: Path, *args: str
) -> tuple[asyncio.subprocess.Process, str, asyncio.Task[bytes]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wfrun",
        "serve",
        "--port",
        "0",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while not any(line.startswith("wfk_") for line in lines):
            line = (await process.stdout.readline()).decode()
            assert line, "wfrun serve exited:\n" + "".join(lines)
            lines.append(line)
    port = re.search(r"serving http://127\.0\.0\.1:(\d+)/", "".join(lines))
    assert port, "".join(lines)
    drain = asyncio.create_task(process.stdout.read())  # keep the pipe from filling up
    return process, port.group(1), drain


def _scale_out_env(database_url: str, s3_endpoint: str) -> dict[str, str]:
    return {
        "WFRUN_DATABASE_URL": database_url,
        "WFRUN_STORAGE__BACKEND": "s3",
        "WFRUN_STORAGE__S3_BUCKET": "wfrun-readme",
        "WFRUN_STORAGE__S3_ENDPOINT_URL": s3_endpoint,
        "WFRUN_STORAGE__S3_PREFIX": f"readme-{os.getpid()}/",
        "WFRUN_STORAGE__S3_ACCESS_KEY_ID": "test",
        "WFRUN_STORAGE__S3_SECRET_ACCESS_KEY": "test",
        "WFRUN_STORAGE__S3_CREATE_BUCKET": "true",
    }


async def test_readme_walkthrough_runs_verbatim(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """SQLite with local files (the embedded default); PostgreSQL with S3 (scale-out)."""
    if not database_url.startswith("sqlite"):
        db = Database(database_url)
        await databases.truncate_all(db)
        await db.dispose()
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "sample.png", tmp_path / "docs" / "sample.png")
    env = {**os.environ, "WFRUN_DATA_DIR": str(tmp_path / "data")}
    if not database_url.startswith("sqlite"):
        env |= _scale_out_env(database_url, request.getfixturevalue("moto_endpoint"))
    demo = () if database_url.startswith("sqlite") else ("--demo",)  # never by default on PG
    process, port, drain = await _start_serve(env, tmp_path, *demo)
    try:
        walk = await asyncio.create_subprocess_exec(
            "bash",
            "-euc",
            walkthrough(),
            cwd=tmp_path,
            env={**env, "WFRUN_PORT": port},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(120):
            output = (await walk.communicate())[0].decode()
        assert walk.returncode == 0, output
        assert "('succeeded', 100, 'my first run')" in output
        assert "result.png is a PNG" in output
        assert re.search(r"^uploaded asset://asset_[0-9a-f]{32}$", output, flags=re.MULTILINE), (
            output
        )
        await _check_bill(port, (tmp_path / "data" / "demo_api_key").read_text().strip())
    finally:
        process.terminate()
        await process.wait()
        await drain
    # uvicorn shuts down gracefully, then re-raises the captured SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM)


async def _check_bill(port: str, key: str) -> None:
    base = f"http://127.0.0.1:{port}/api/open/v2"
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        run = (await client.get("/workflow/run/list")).json()["data"]["items"][0]
        info = (
            await client.get("/workflow/run/info", params={"run_order_id": run["run_order_id"]})
        ).json()["data"]
        balance = (await client.get("/balance/info")).json()["data"]
    quote, final = parse_amount(info["quote_amount"]), parse_amount(info["final_amount"])
    assert 0 < final < quote
    assert final + parse_amount(info["released_amount"]) == quote
    assert parse_amount(balance["available_amount"]) == parse_amount("100") - final
