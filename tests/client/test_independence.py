"""The SDK is its own distribution: it never imports the server package ``wfrun`` and
depends on httpx and pydantic only."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).parents[2] / "clients" / "python" / "src" / "wfrun_client"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_module_of_the_sdk_imports_wfrun():
    offenders = {
        f"{p.name}: {name}"
        for p in SDK.rglob("*.py")
        for name in _imported(p)
        if name == "wfrun" or name.startswith("wfrun.")
    }
    assert offenders == set()
    assert len(list(SDK.rglob("*.py"))) > 5  # the walk did see the package


def test_importing_the_sdk_and_its_cli_loads_nothing_of_wfrun():
    code = (
        "import sys, wfrun_client, wfrun_client.cli; "
        "print(sorted(m for m in sys.modules if m == 'wfrun' or m.startswith('wfrun.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_distribution_requires_httpx_and_pydantic_only():
    required = importlib.metadata.requires("wfrun-client") or []
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in required}
    assert names == {"httpx", "pydantic"}
    scripts = importlib.metadata.entry_points(group="console_scripts", name="wfrun-client")
    assert [s.value for s in scripts] == ["wfrun_client.cli:main"]
