"""A 100 MB upload streams through `wfrun serve` without the server's memory following it."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.factories import png_bytes
from tests.test_readme import _start_serve

SIZE = 100 * 1024 * 1024 - 4096
CHUNK = 1024 * 1024


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def _body() -> AsyncIterator[bytes]:
    yield (
        b'--wfrunboundary\r\nContent-Disposition: form-data; name="file"; '
        b'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
    )
    head = png_bytes(4, 4)
    yield head
    sent = len(head)
    while sent < SIZE:
        piece = min(CHUNK, SIZE - sent)
        yield b"\0" * piece
        sent += piece
    yield b"\r\n--wfrunboundary--\r\n"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)")
async def test_hundred_megabyte_upload_keeps_server_memory_flat(tmp_path, capsys):
    env = {**os.environ, "WFRUN_DATA_DIR": str(tmp_path / "data")}
    process, port, drain = await _start_serve(env, tmp_path)
    try:
        key = (tmp_path / "data" / "demo_api_key").read_text().strip()
        base = f"http://127.0.0.1:{port}/api/open/v2"
        async with httpx.AsyncClient(timeout=120) as client:
            await client.get(f"{base}/balance/info", headers={"Authorization": f"Bearer {key}"})
            before = peak_rss_kib(process.pid)
            response = await client.post(
                f"{base}/assets",
                content=_body(),
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "multipart/form-data; boundary=wfrunboundary",
                },
            )
        after = peak_rss_kib(process.pid)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["size_bytes"] == SIZE
        with capsys.disabled():
            pass
        assert after - before < 32 * 1024  # flat: far below the 100 MB that went through
    finally:
        process.terminate()
        await process.wait()
        await drain
