"""``wfrun packages init|check``: from a ComfyUI export to an imported, running workflow; the
hints for the usual mistakes; and the optional SDKs (extras) at start-up."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from PIL import Image

import wfrun
from tests.support.api import execution, info, submit
from tests.support.factories import customer, data_uri, drain, operator, png_bytes
from wfrun.cli.main import cli
from wfrun.config import SeedanceSettings, Settings, StorageSettings
from wfrun.errors import MissingExtra
from wfrun.runtime import Runtime, build_runtime
from wfrun.services import catalog

DATA = Path(__file__).parent / "data"
CAPTURED = DATA / "comfyui_loadimage_scale.api.json"
OBJECT_INFO = DATA / "comfyui_object_info.json"
DEMO = Path(wfrun.__file__).parent / "demo" / "comfyui_invert.json"
PLACEHOLDER_LINES = [
    '  pricing.fixed_fee: not filled in: yuan charged per run, a decimal string like "0.02"',
    (
        '  pricing.price_per_second: not filled in: yuan per second of execution, like "0.002"'
        ' (or "0")'
    ),
    "  pricing.estimated_seconds: not filled in: seconds a typical run takes (the quote), like 10",
]
PRICES = {"fixed_fee": "0.02", "price_per_second": "0.001", "estimated_seconds": 3}


def run(tmp_path: Path, *args: str, code: int = 0) -> Result:
    """``wfrun`` for the commands that touch no database."""
    settings = Settings(data_dir=tmp_path / "data", secret_key="test-secret", seed_demo=False)
    result = CliRunner().invoke(cli, list(args), obj=settings, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def fill(path: Path, enable: tuple[str, ...] = ()) -> dict[str, Any]:
    """What an author does with a draft: the prices, and the candidates they sell."""
    document: dict[str, Any] = json.loads(path.read_text())
    document["pricing"] = PRICES
    for entry in document["inputs"]:
        entry["enabled"] = entry["enabled"] or entry["key"] in enable
    path.write_text(json.dumps(document))
    return document


def demo_graph(tmp_path: Path) -> Path:
    path = tmp_path / "invert.json"
    write(path, json.loads(DEMO.read_text())["graph"])
    return path


# ---- init → check → fill → check → import (both databases) -------------------------------------


@pytest.mark.parametrize(
    ("source", "flags", "summary"),
    [
        (
            "demo",
            ("--engine", "comfyui"),
            (["n1_image"], ["n3_filename_prefix"], ["n3_images"]),
        ),
        (
            "captured",
            ("--engine", "comfyui", "--object-info", str(OBJECT_INFO)),
            (
                ["n10_image"],
                [
                    "n11_upscale_method",
                    "n11_width",
                    "n11_height",
                    "n11_crop",
                    "n12_filename_prefix",
                ],
                ["n12_images"],
            ),
        ),
    ],
)
def test_init_check_fill_and_import(invoke, tmp_path, source, flags, summary):
    export = demo_graph(tmp_path) if source == "demo" else CAPTURED
    out = tmp_path / "package.json"
    made = json.loads(
        run(tmp_path, "packages", "init", str(export), "-o", str(out), *flags, "--json").stdout
    )
    assert (made["parameters"], made["candidates"], made["outputs"]) == summary
    assert made["to_fill_in"] == [
        "pricing.fixed_fee",
        "pricing.price_per_second",
        "pricing.estimated_seconds",
    ]

    checked = run(tmp_path, "packages", "check", str(out), code=1)
    assert checked.stdout.splitlines() == [f"{out}: 3 problems", *PLACEHOLDER_LINES]
    owner = json.loads(invoke("accounts", "create", "Op", "--json").stdout)["id"]
    refused = invoke(
        "workflows", "import", str(out), "--owner", owner, "--allow-no-instance", code=1
    )
    assert refused.stderr.startswith(
        "error: INVALID_WORKFLOW_PACKAGE: pricing.fixed_fee: not filled in: yuan charged per run"
    )
    assert refused.stderr.count("not filled in") == 3

    fill(out, enable=(summary[1][0],))
    clean = run(tmp_path, "packages", "check", str(out), *flags[2:])
    assert clean.stdout.splitlines()[0] == f"{out}: ok"
    imported = json.loads(
        invoke(
            "workflows",
            "import",
            str(out),
            "--owner",
            owner,
            "--allow-no-instance",
            "--publish",
            "--json",
        ).stdout
    )
    assert (imported["revision_number"], imported["published"]) == (1, True)
    assert [w["slug"] for w in json.loads(invoke("workflows", "list", "--json").stdout)] == [
        "invert" if source == "demo" else "comfyui-loadimage-scale-api"
    ]


async def test_a_captured_export_runs_on_the_builtin_engine(
    runtime: Runtime, http: httpx.AsyncClient, tmp_path
):
    out = tmp_path / "scale.json"
    run(tmp_path, "packages", "init", str(CAPTURED), "--engine", "local", "-o", str(out))
    assert (
        run(tmp_path, "packages", "check", str(out), code=1).stdout.splitlines()[1:]
        == PLACEHOLDER_LINES
    )
    document = fill(out, enable=("n11_width",))
    assert run(tmp_path, "packages", "check", str(out)).stdout.splitlines() == [
        f"{out}: ok",
        '  4 candidate parameter(s) disabled: set "enabled": true to offer one',
        "  graph checked against wfrun's built-in nodes",
    ]
    owner = await operator(runtime)
    result = await catalog.import_package(
        runtime.db, owner_id=owner, document=document, publish=True
    )
    alice = await customer(runtime, balance="1")
    inputs = {"n10_image": data_uri(png_bytes(32, 24)), "n11_width": 40}
    submitted = await submit(http, alice, result.workflow_id, "scale-1", inputs)
    await drain(runtime)

    seen = await execution(http, alice, submitted["run_order_id"])
    assert seen["status"] == "succeeded"
    (url,) = seen["outputs"]["n12_images"]
    async with httpx.AsyncClient() as plain:
        image = Image.open(io.BytesIO((await plain.get(url)).content))
    assert image.size == (40, 48)  # the enabled width; the graph's height
    bill = await info(http, alice, submitted["run_order_id"])
    assert bill["quote_amount"] == "0.02300000"  # 0.02 + 0.001 × 3 s


# ---- the usual mistakes ---------------------------------------------------------------------------

UI_EXPORT = {
    "last_node_id": 3,
    "last_link_id": 2,
    "nodes": [{"id": 1}],
    "links": [[1, 1, 0, 2, 0, "IMAGE"]],
    "version": 0.4,
}
UI_HINT = (
    '(document): a ComfyUI UI-format workflow ("nodes" and "links" arrays), not a package — export'
    ' the workflow with "Save (API format)" in ComfyUI, then wrap it with `wfrun packages init FILE`'
)
BARE_HINT = "(document): a bare ComfyUI API-format graph, not a package — wrap it with `wfrun packages init FILE`"
FLOAT_HINT = 'pricing.fixed_fee: is the number 0.02; amounts are exact — write amounts as strings, e.g. "0.02"'


def mistakes() -> list[tuple[str, Any, str]]:
    package = json.loads(DEMO.read_text())
    floated = json.loads(DEMO.read_text())
    floated["pricing"]["fixed_fee"] = 0.02
    return [
        ("ui", UI_EXPORT, UI_HINT),
        ("bare", package["graph"], BARE_HINT),
        ("float", floated, FLOAT_HINT),
    ]


def test_each_usual_mistake_gets_its_hint_from_check(tmp_path):
    for name, document, hint in mistakes():
        path = write(tmp_path / f"{name}.json", document)
        result = run(tmp_path, "packages", "check", path, code=1)
        assert result.stdout.splitlines() == [f"{path}: 1 problem", f"  {hint}"]
        as_json = json.loads(run(tmp_path, "packages", "check", path, "--json", code=1).stdout)
        assert as_json["ok"] is False
        assert [
            str(p["path"]) + ": " + p["message"] + " — " + p["hint"] for p in as_json["problems"]
        ] == [hint]


def test_each_usual_mistake_gets_its_hint_from_import(invoke, tmp_path):
    owner = json.loads(invoke("accounts", "create", "Op", "--json").stdout)["id"]
    for name, document, hint in mistakes():
        path = write(tmp_path / f"{name}.json", document)
        result = invoke(
            "workflows", "import", path, "--owner", owner, "--allow-no-instance", code=1
        )
        assert result.stderr == f"error: INVALID_WORKFLOW_PACKAGE: {hint}\n"
    assert json.loads(invoke("workflows", "list", "--json").stdout) == []


def test_three_problems_in_one_file_are_all_reported(tmp_path):
    document = json.loads(DEMO.read_text())
    document["pricing"]["fixed_fee"] = 0.02
    document["slug"] = "Comfy Invert"
    document["outputs"][0]["key"] = "n9_images"
    path = write(tmp_path / "three.json", document)
    result = run(tmp_path, "packages", "check", path, code=1)
    assert result.stdout.splitlines() == [
        f"{path}: 3 problems",
        f"  {FLOAT_HINT}",
        "  slug: must be 1-100 lowercase letters, digits or '-', starting with a letter or digit",
        "  outputs.0 (n9_images): node 9 is not in the graph",
    ]


def test_init_refuses_what_it_cannot_wrap(tmp_path):
    ui = write(tmp_path / "ui.json", UI_EXPORT)
    refused = run(tmp_path, "packages", "init", ui, code=1)
    assert refused.stderr == (
        f'error: INVALID_WORKFLOW_PACKAGE: {ui}: a ComfyUI UI-format workflow ("nodes" and "links"'
        ' arrays) — export the workflow with "Save (API format)" in ComfyUI\n'
    )
    export = demo_graph(tmp_path)
    run(tmp_path, "packages", "init", str(export))
    assert (tmp_path / "invert.package.json").exists()
    again = run(tmp_path, "packages", "init", str(export), code=2)
    assert "invert.package.json exists (pass --force to overwrite it)" in again.output
    run(tmp_path, "packages", "init", str(export), "--force", "--slug", "my-invert")
    assert json.loads((tmp_path / "invert.package.json").read_text())["slug"] == "my-invert"
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    assert "is not JSON" in run(tmp_path, "packages", "check", str(not_json), code=1).stderr


# ---- extras ---------------------------------------------------------------------------------------


def test_optional_sdks_are_imported_only_when_configured():
    probe = (
        "import sys, wfrun.runtime, wfrun.cli.main, wfrun.api.app, wfrun.workers.worker;"
        "print(sorted({'boto3', 'botocore', 'volcenginesdkarkruntime', 'volcenginesdkcore'}"
        " & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


@pytest.mark.parametrize(
    ("module", "changes", "message"),
    [
        (
            "boto3",
            {"storage": StorageSettings(backend="s3", s3_bucket="b")},
            "storage.backend = \"s3\" needs the s3 extra: pip install 'wfrun[s3]'",
        ),
        (
            "volcenginesdkarkruntime",
            {"seedance": SeedanceSettings(ark_api_key="ark-key")},
            (
                "the Seedance engine (seedance.ark_api_key is set) needs the seedance extra: "
                "pip install 'wfrun[seedance]'"
            ),
        ),
    ],
)
async def test_a_missing_extra_stops_start_up_before_anything_is_created(
    monkeypatch, tmp_path, module, changes, message
):
    monkeypatch.setitem(sys.modules, module, None)  # what an install without the extra sees
    settings = Settings(data_dir=tmp_path / "fresh", secret_key="test-secret", **changes)
    with pytest.raises(MissingExtra) as raised:
        await build_runtime(settings)
    assert str(raised.value) == message
    assert not (tmp_path / "fresh").exists()
