"""``wfrun seedance check`` against the Ark stand-in."""

from __future__ import annotations

import json

from tests.seedance.ark_standin import ArkStandin


def test_check_passes_with_working_credentials(invoke, standin: ArkStandin, person_group: str):
    result = invoke("seedance", "check", "--json")
    checks = {c["name"]: c for c in json.loads(result.output)}
    assert all(c["ok"] for c in checks.values()), checks
    assert (
        checks["default real-person group"]["detail"] == f"{person_group} is a LivenessFace group"
    )


def test_check_names_what_is_wrong(invoke, standin: ArkStandin):
    standin.api_keys.clear()  # the key was revoked in the Ark console
    standin.asset_api_allowed = False  # the IAM user lacks ark:*Asset*
    result = invoke("seedance", "check", code=1)
    assert "FAIL ark api key: Ark answered 401 AuthenticationError" in result.output
    assert "FAIL asset control plane: ListAssetGroups: AccessDenied" in result.output
