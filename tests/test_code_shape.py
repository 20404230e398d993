"""Small rooms: no module of wfrun (or of its SDK) over 400 lines and no function over 40 (generated
migrations aside), so each stays readable in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "wfrun"
SDK = ROOT / "clients" / "python" / "src" / "wfrun_client"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40


def _sources() -> list[Path]:
    """wfrun's modules and the SDK's (``clients/python``)."""
    found = [*sorted(SRC.rglob("*.py")), *sorted(SDK.rglob("*.py"))]
    return [p for p in found if "migrations" not in p.parts]


def test_no_module_is_too_long():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_too_long():
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}
