"""The operator CLI against real databases (both dialects)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.support.factories import sleepy_package
from wfrun.services.seed import demo_package


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_accounts_keys_and_topups(invoke):
    account = as_json(invoke("accounts", "create", "Ada", "--json"))
    assert account["available"] == "0.00000000"
    topped = as_json(invoke("accounts", "topup", account["id"], "12.5", "--json"))
    assert topped["available"] == "12.50000000"
    shown = as_json(invoke("accounts", "show", account["id"], "--json"))
    assert shown["available"] == "12.50000000"

    key = as_json(invoke("keys", "create", account["id"], "--name", "ci", "--json"))
    assert key["api_key"].startswith("wfk_")
    listed = as_json(invoke("keys", "list", "--account", account["id"], "--json"))
    assert [k["id"] for k in listed] == [key["key_id"]]
    assert "key_hash" not in listed[0]
    assert key["api_key"] not in json.dumps(listed)
    revoked = as_json(invoke("keys", "revoke", key["key_id"], "--json"))
    assert revoked["changed"] is True
    assert as_json(invoke("keys", "revoke", key["key_id"], "--json"))["changed"] is False
    assert "ledger balances" in invoke("ledger", "check").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("accounts", "topup", "user_missing", "1"), "ACCOUNT_NOT_FOUND: account user_missing"),
        (("keys", "revoke", "key_missing"), "API_KEY_NOT_FOUND: API key key_missing does not"),
        (("workflows", "publish", "wf_missing"), "WORKFLOW_NOT_FOUND"),
    ],
)
def test_errors_are_precise_and_exit_1(invoke, args, message):
    result = invoke(*args, code=1)
    assert message in result.stderr


def test_topup_amount_must_be_exact_and_positive(invoke):
    account = as_json(invoke("accounts", "create", "Bo", "--json"))
    assert (
        "more than 8 decimal places"
        in invoke("accounts", "topup", account["id"], "0.000000001", code=2).output
    )
    assert "must be positive" in invoke("accounts", "topup", account["id"], "0", code=1).stderr


def _write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "package.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_import_publish_and_revisions(invoke, tmp_path):
    owner = as_json(invoke("accounts", "create", "Op", "--json"))["id"]
    first = as_json(
        invoke("workflows", "import", _write(tmp_path, demo_package()), "--owner", owner, "--json")
    )
    assert (first["revision_number"], first["created_workflow"], first["published"]) == (
        1,
        True,
        False,
    )
    second = as_json(
        invoke(
            "workflows",
            "import",
            _write(tmp_path, demo_package()),
            "--owner",
            owner,
            "--publish",
            "--json",
        )
    )
    assert second["workflow_id"] == first["workflow_id"]
    assert second["revision_number"] == 2
    pinned = as_json(
        invoke(
            "workflows",
            "publish",
            first["workflow_id"],
            "--revision",
            first["revision_id"],
            "--json",
        )
    )
    assert pinned["published_revision_id"] == first["revision_id"]
    shown = as_json(invoke("workflows", "show", first["workflow_id"]))
    assert shown["published_revision_id"] == first["revision_id"]
    assert [r["number"] for r in shown["revisions"]] == [1, 2]
    listed = as_json(invoke("workflows", "list", "--json"))
    assert [w["id"] for w in listed] == [first["workflow_id"]]


BAD_PACKAGES = [
    (lambda d: d.pop("graph"), "graph: Field required"),
    (lambda d: d.update(engine="gpu"), "engine: Input should be 'local', 'comfyui' or 'seedance'"),
    (
        lambda d: d["inputs"].append({"key": "n9_x", "type": "integer"}),
        "inputs.5 (n9_x): bound node 9 is not in the graph",
    ),
    (
        lambda d: d["inputs"].append({"key": "n2_nope", "type": "integer"}),
        "inputs.5 (n2_nope): node 2 has no input 'nope'",
    ),
    (
        lambda d: d["inputs"][1].update(default_value=5000),
        "inputs.1 (n2_width): default_value is invalid: input n2_width must be <= 2048 (got 5000)",
    ),
    (
        lambda d: d["pricing"].update(fixed_fee="0.000000001"),
        "pricing.fixed_fee: '0.000000001' has more than 8 decimal places",
    ),
    (
        lambda d: d["graph"]["2"]["inputs"].update(crop="sideways"),
        "graph: node 2 (ImageScale) input 'crop': value_not_in_list",
    ),
    (
        lambda d: d["graph"]["3"].update(class_type="NoSuchNode"),
        (
            "graph: node 3 (NoSuchNode): invalid_prompt: Cannot execute because node NoSuchNode does "
            "not exist."
        ),
    ),
    (
        lambda d: d["graph"]["4"]["inputs"].update(image=["9", 0]),
        "graph: node 4 (ImageBlur) input 'image': bad_linked_input",
    ),
    (lambda d: d["graph"]["4"]["inputs"].update(image=["9", 0]), "linked node '9' does not exist"),
    (
        lambda d: d["outputs"].append({"key": "n99_images", "type": "image"}),
        "outputs.2 (n99_images): node 99 is not in the graph",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_PACKAGES)
def test_invalid_packages_are_refused_precisely(invoke, tmp_path, mutate, message):
    owner = as_json(invoke("accounts", "create", "Op", "--json"))["id"]
    document = demo_package()
    mutate(document)
    result = invoke("workflows", "import", _write(tmp_path, document), "--owner", owner, code=1)
    assert "INVALID_WORKFLOW_PACKAGE" in result.stderr
    assert message in result.stderr
    assert as_json(invoke("workflows", "list", "--json")) == []


def test_sleepy_package_imports(invoke, tmp_path):
    owner = as_json(invoke("accounts", "create", "Op", "--json"))["id"]
    invoke("workflows", "import", _write(tmp_path, sleepy_package()), "--owner", owner)
