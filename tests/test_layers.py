"""The import contracts of pyproject's ``[tool.importlinter]`` hold, and they bite: a copy of
the package with one forbidden import fails ``lint-imports`` naming the broken contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, *, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:  # ahead of the installed wfrun
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(CONFIG)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken." in result.stdout


def test_a_forbidden_import_breaks_its_contract(tmp_path):
    copy = tmp_path / "src" / "wfrun"
    shutil.copytree(
        ROOT / "src" / "wfrun", copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    money = copy / "domain" / "money.py"
    money.write_text(money.read_text() + "\nimport wfrun.services\n")

    result = lint_imports(tmp_path, pythonpath=tmp_path / "src")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "domain imports nothing of wfrun but errors BROKEN" in result.stdout
    assert "wfrun.domain.money -> wfrun.services" in result.stdout
    assert "services import no workers, api or cli KEPT" in result.stdout
