"""``wfrun accounts topup`` takes plain decimal amounts the database can hold, and refuses every
other spelling with a clear message and no traceback (both dialects)."""

from __future__ import annotations

import json

import pytest

from wfrun.domain.money import MAX_MINOR, format_amount


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1e3", "'1e3' is not a plain decimal amount"),
        ("99999999999999999", "'99999999999999999' is out of range"),
        ("92233720368.54775808", "is out of range (amounts are at most 92233720368.54775807)"),
        ("0.000000001", "'0.000000001' has more than 8 decimal places"),
        ("NaN", "'NaN' is not a plain decimal amount"),
        ("²", "'²' is not a plain decimal amount"),
        ("12,5", "'12,5' is not a plain decimal amount"),
    ],
)
def test_topup_refuses_anything_but_a_plain_decimal_in_range(invoke, amount, message):
    account = json.loads(invoke("accounts", "create", "Ada", "--json").stdout)
    result = invoke("accounts", "topup", account["id"], amount, code=2)
    assert message in result.stderr
    shown = json.loads(invoke("accounts", "show", account["id"], "--json").stdout)
    assert shown["available"] == "0.00000000"


def test_topup_to_the_largest_balance_and_not_past_it(invoke):
    account = json.loads(invoke("accounts", "create", "Ada", "--json").stdout)["id"]
    largest = format_amount(MAX_MINOR)
    topped = json.loads(invoke("accounts", "topup", account, largest, "--json").stdout)
    assert topped["available"] == largest
    result = invoke("accounts", "topup", account, "0.00000001", code=1)
    assert f"INVALID_PARAMETER: account {account} would hold more than {largest}" in result.stderr
    shown = json.loads(invoke("accounts", "show", account, "--json").stdout)
    assert shown["available"] == largest
    assert "ledger balances" in invoke("ledger", "check").output
