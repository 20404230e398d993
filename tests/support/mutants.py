"""Known-wrong settlements, to prove the money tests catch them (issue 10).

Load as a pytest plugin (``pytest -p tests.support.mutants``) with ``WFRUN_MUTANT`` naming one
of :data:`MUTANTS`: before any test module is collected, the plugin replaces one function of
``wfrun.domain.pricing`` with its broken twin — in the module and in every ``wfrun`` module
that already imported it by name — so the real services settle wrongly. Without the variable
it changes nothing. ``tests/integration/test_mutants.py`` runs the money tests this way in a
subprocess and expects them to fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from wfrun.domain import pricing

_compute_cost = pricing.compute_cost
_settle = pricing.settle


def _compute_cost_without_fee(
    prices: pricing.PriceTable, execution_ms: int, *, include_fixed_fee: bool = True
) -> int:
    """Settling without the fixed fee: only the seconds are charged."""
    return _compute_cost(prices, execution_ms, include_fixed_fee=False)


def _settle_never_charging_the_shortfall(
    *,
    frozen: int,
    compute: int,
    external: int,
    quoted_external: int,
    accept_external_cost_risk: bool,
) -> pricing.Settlement:
    """Never charging the external cost over its quote, even with the customer's consent."""
    return _settle(
        frozen=frozen,
        compute=compute,
        external=external,
        quoted_external=quoted_external,
        accept_external_cost_risk=False,
    )


MUTANTS: dict[str, tuple[str, Callable[..., Any], str]] = {
    "no_fixed_fee": (
        "compute_cost",
        _compute_cost_without_fee,
        "settlement drops the fixed fee",
    ),
    "no_external_shortfall": (
        "settle",
        _settle_never_charging_the_shortfall,
        "an external shortfall is never charged, even with consent",
    ),
}
VARIABLE = "WFRUN_MUTANT"


def _apply(name: str) -> str:
    if name not in MUTANTS:
        raise pytest.UsageError(f"{VARIABLE}={name!r}: known mutants are {sorted(MUTANTS)}")
    attribute, broken, what = MUTANTS[name]
    original = getattr(pricing, attribute)
    for module in [m for n, m in list(sys.modules.items()) if n.startswith("wfrun")]:
        if getattr(module, attribute, None) is original:
            setattr(module, attribute, broken)
    return f"{name} ({what})"


_ACTIVE = _apply(os.environ[VARIABLE]) if os.environ.get(VARIABLE) else None


def pytest_report_header() -> str:
    return f"wfrun mutant: {_ACTIVE or 'none'}"
