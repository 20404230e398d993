"""The tests' own arithmetic of what a run costs (README "How settlement works"), written
independently of ``wfrun.domain.pricing`` so that a mistake there cannot hide in the expected
values. All amounts are integer minor units (1e-8 CNY)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wfrun.domain.money import format_amount, parse_amount


def cny(text: str) -> int:
    """``"0.01"`` → 1_000_000 minor units."""
    return parse_amount(text)


def half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up (both non-negative)."""
    return (2 * numerator + denominator) // (2 * denominator)


def time_charge(price_per_second: int, execution_ms: int) -> int:
    """Price of ``execution_ms`` of execution, rounded once."""
    return half_up(price_per_second * execution_ms, 1000)


@dataclass(frozen=True)
class Bill:
    """How one run's freeze of ``quote`` resolves."""

    quote: int
    compute: int
    external: int
    ceiling: int | None = None
    """The most the run may be charged (issue 16: its freeze + the available balance + the
    credit limit, or its max_cost), when that is below what it consumed."""

    @property
    def final(self) -> int:
        consumed = self.compute + self.external
        return consumed if self.ceiling is None else min(consumed, self.ceiling)

    @property
    def released(self) -> int:
        return max(self.quote - self.final, 0)


def success(
    *,
    quote: int,
    fixed_fee: int,
    price_per_second: int,
    execution_ms: int,
    external: int = 0,
    quoted_external: int = 0,
    consent: bool = False,
) -> Bill:
    """A run that succeeded: fee + time, plus the external cost (capped at its quote unless
    the customer accepted the risk)."""
    charged = external if consent else min(external, quoted_external)
    compute = fixed_fee + time_charge(price_per_second, execution_ms)
    return Bill(quote, compute, charged)


def cancelled_running(*, quote: int, price_per_second: int, execution_ms: int) -> Bill:
    """A run cancelled while it ran: the seconds it used, no fee."""
    return Bill(quote, time_charge(price_per_second, execution_ms), 0)


def released(quote: int) -> Bill:
    """A run that failed or never started: nothing charged."""
    return Bill(quote, 0, 0)


def assert_bill(info: dict[str, Any], bill: Bill) -> None:
    """``run/info`` shows exactly ``bill``."""
    fields = ("quote_amount", "compute_cost", "external_model_cost", "final_amount")
    shown = {name: info[name] for name in (*fields, "released_amount")}
    assert shown == {
        "quote_amount": format_amount(bill.quote),
        "compute_cost": format_amount(bill.compute),
        "external_model_cost": format_amount(bill.external),
        "final_amount": format_amount(bill.final),
        "released_amount": format_amount(bill.released),
    }


def execution_ms(view: dict[str, Any]) -> int:
    """The execution time a run was settled by, from its ``run/execution`` view."""
    seconds = view["actual_execution_duration_sec"]
    assert isinstance(seconds, int | float), view
    return round(seconds * 1000)
