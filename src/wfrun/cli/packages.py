"""``wfrun packages``: write a package from a ComfyUI export, and check one before importing.

Neither command touches the database: ``init`` drafts a file, ``check`` reports every problem
of one (exit status 0 when clean, 1 with problems).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from wfrun.cli.common import json_option
from wfrun.cli.lazy import fail
from wfrun.cli.output import emit
from wfrun.errors import InvalidWorkflowPackage
from wfrun.services import package_authoring as authoring
from wfrun.services.packages import PackageReport, check_offline

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("packages")
def packages_group() -> None:
    """Author workflow packages (docs/workflow-package.md)."""


def _read_json(path: Path) -> Any:
    """The file's JSON; a refusal (exit 1, JSON under ``--json``) when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail("INVALID_WORKFLOW_PACKAGE", f"{path} is not JSON: {exc}")


@packages_group.command("init")
@click.argument("export", type=_FILE)
@click.option(
    "--engine", type=click.Choice(["comfyui", "local"]), default="comfyui", show_default=True
)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--object-info", "object_info", type=_FILE, help="A saved /object_info answer.")
@click.option("--slug", default=None, help="Default: from the export's file name.")
@click.option("--title", default=None, help="Default: the export's file name.")
@click.option("--force", is_flag=True, help="Overwrite the output file.")
@json_option
def packages_init(
    export: Path,
    engine: str,
    out: Path | None,
    object_info: Path | None,
    slug: str | None,
    title: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write a package around EXPORT, a ComfyUI "Save (API format)" graph.

    Every widget input becomes a disabled candidate parameter ("enabled": false), media
    loaders required media parameters, output nodes outputs; fill in the pricing
    placeholders, enable the parameters to sell, then `wfrun packages check` it."""
    target = out or export.with_name(f"{export.stem}.package.json")
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists (pass --force to overwrite it)")
    try:
        graph = authoring.export_graph(_read_json(export))
    except InvalidWorkflowPackage as exc:
        fail(exc.engine_code, f"{export}: {exc.detail}")
    draft = authoring.Draft(
        engine=engine,
        slug=slug or authoring.slug_for(export.stem),
        title=title or export.stem,
        object_info=_read_json(object_info) if object_info else None,
    )
    document = authoring.draft_package(graph, draft)
    target.write_text(authoring.render(document), encoding="utf-8")
    emit(_summary(target, document), as_json=as_json, text=_init_text(target, document))


def _summary(target: Path, document: dict[str, Any]) -> dict[str, Any]:
    inputs = document["inputs"]
    return {
        "path": str(target),
        "parameters": [i["key"] for i in inputs if i["enabled"]],
        "candidates": [i["key"] for i in inputs if not i["enabled"]],
        "outputs": [o["key"] for o in document["outputs"]],
        "to_fill_in": [f"pricing.{k}" for k in document["pricing"]],
    }


def _init_text(target: Path, document: dict[str, Any]) -> str:
    summary = _summary(target, document)
    lines = [
        f"wrote {target}",
        f"  parameters: {', '.join(summary['parameters']) or '(none)'}",
        f"  candidates (disabled): {', '.join(summary['candidates']) or '(none)'}",
        f"  outputs: {', '.join(summary['outputs']) or '(none: add one)'}",
        f"  fill in: {', '.join(summary['to_fill_in'])}",
        f"then: wfrun packages check {target}",
    ]
    return "\n".join(lines)


@packages_group.command("check")
@click.argument("file", type=_FILE)
@click.option(
    "--object-info",
    "object_info",
    type=_FILE,
    help="comfyui: check the graph against a saved /object_info answer.",
)
@json_option
def packages_check(file: Path, object_info: Path | None, as_json: bool) -> None:
    """Report every problem of package FILE at once (exit status 1 when there is one)."""
    info = _read_json(object_info) if object_info else None
    checked = check_offline(_read_json(file), info, source=str(object_info))
    report = checked.report
    data = {
        "file": str(file),
        "ok": report.ok,
        "problems": [p.to_json() for p in report.problems],
        "notes": list(checked.notes),
    }
    emit(data, as_json=as_json, text=_check_text(file, report, checked.notes))
    sys.exit(0 if report.ok else 1)


def _check_text(file: Path, report: PackageReport, notes: tuple[str, ...]) -> str:
    if report.ok:
        return "\n".join([f"{file}: ok", *(f"  {note}" for note in notes)])
    count = len(report.problems)
    head = f"{file}: {count} problem{'s' if count > 1 else ''}"
    return "\n".join([head, *(f"  {p}" for p in report.problems)])
