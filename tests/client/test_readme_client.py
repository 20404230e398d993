"""The README's "From Python" and "From the command line" sections, run verbatim against the
live app (the demo workflow, a key from the environment, docs/sample.png in the cwd)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

from tests.client.conftest import Live

ROOT = Path(__file__).parents[2]


def section(name: str, fence: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
    return block.split(f"```{fence}\n", 1)[1].rsplit("```", 1)[0]


async def _run(env: Live, cwd: Path, *argv: str) -> str:
    (cwd / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "sample.png", cwd / "docs" / "sample.png")
    bin_dir = str(Path(sys.executable).parent)
    environ = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "WFRUN_BASE_URL": env.server.base_url,
        "WFRUN_API_KEY": env.key,
    }
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(120):
        out = (await process.communicate())[0].decode()
    assert process.returncode == 0, out
    return out


async def test_from_python_runs_verbatim(live: Live, tmp_path: Path):
    out = await _run(live, tmp_path, sys.executable, "-c", section("client-python", "python"))
    lines = out.splitlines()
    assert re.fullmatch(r"succeeded charged 0\.\d{8} released 0\.\d{8}", lines[-2]), out
    assert lines[-1] == "True from python"
    assert "done " in lines
    assert any(line.startswith("progress ") for line in lines)


async def test_from_the_command_line_runs_verbatim(live: Live, tmp_path: Path):
    out = await _run(live, tmp_path, "bash", "-euc", section("client-cli", "sh"))
    assert re.search(r"^succeeded: wfrun_[0-9a-f]{20} \(charged 0\.\d{8} CNY", out, re.MULTILINE), (
        out
    )
    assert "saved outputs/n5_images_0.png" in out
    assert (tmp_path / "outputs" / "n7_text.txt").read_text() == "from the shell"
    assert re.search(r"^available 9\.\d{8} CNY, frozen 0\.00000000$", out, re.MULTILINE), out
