"""``wfrun keys create|limit|list`` with spend limits, against real databases (both dialects)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def _listed(invoke, account_id: str) -> dict[str, Any]:
    (key,) = as_json(invoke("keys", "list", "--account", account_id, "--json"))
    return {k: key[k] for k in ("spend_limit", "spend_period", "period_frozen", "period_spent")}


def test_a_key_gets_changes_and_loses_a_spend_limit(invoke):
    account = as_json(invoke("accounts", "create", "Ada", "--json"))["id"]
    made = as_json(
        invoke("keys", "create", account, "--spend-limit", "50", "--period", "day", "--json")
    )
    assert _listed(invoke, account) == {
        "spend_limit": "50.00000000",
        "spend_period": "day",
        "period_frozen": "0.00000000",
        "period_spent": "0.00000000",
    }
    changed = as_json(
        invoke(
            "keys", "limit", made["key_id"], "--spend-limit", "7.5", "--period", "total", "--json"
        )
    )
    assert (changed["spend_limit"], changed["period_key"]) == ("7.50000000", "total")
    assert (
        "7.50000000 CNY per total"
        in invoke(
            "keys", "limit", made["key_id"], "--spend-limit", "7.5", "--period", "total"
        ).output
    )
    removed = as_json(invoke("keys", "limit", made["key_id"], "--no-limit", "--json"))
    assert removed["spend_limit"] is None
    assert _listed(invoke, account)["spend_limit"] is None
    assert "ledger balances" in invoke("ledger", "check").output


def test_spend_limit_refusals_are_precise(invoke):
    account = as_json(invoke("accounts", "create", "Bo", "--json"))["id"]
    key = as_json(invoke("keys", "create", account, "--json"))["key_id"]
    assert (
        "must not be negative" in invoke("keys", "limit", key, "--spend-limit", "-1", code=2).output
    )
    assert (
        "either --spend-limit AMOUNT or --no-limit" in invoke("keys", "limit", key, code=2).output
    )
    both = invoke("keys", "limit", key, "--spend-limit", "1", "--no-limit", code=2)
    assert "either --spend-limit AMOUNT or --no-limit" in both.output
    assert (
        "'week' is not one of"
        in invoke("keys", "limit", key, "--spend-limit", "1", "--period", "week", code=2).output
    )
    missing = invoke("keys", "limit", "key_nope", "--spend-limit", "1", code=1)
    assert "API key key_nope does not exist" in missing.stderr
    assert _listed(invoke, account)["spend_limit"] is None
