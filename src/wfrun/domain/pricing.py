"""Quotes and settlements (多退少补), as pure functions over integer minor units.

Rules (open-api-v2.md §3 "Settlement"):
- quote = fixed_fee + price_per_second × estimated_seconds + quoted external cost;
- compute_cost = fixed_fee + price_per_second × actual seconds (rounded once, half up);
- final = compute_cost + external cost charged; released = max(frozen − final, 0); a shortfall
  (final > frozen) is charged from the available balance;
- without ``accept_external_cost_risk`` the external part charged never exceeds its quote; the
  overage is absorbed by the operator and recorded;
- a failed run, or one cancelled before it started, is released in full;
- a run cancelled while running is charged only the seconds it consumed (no fixed fee).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wfrun.domain.money import round_div


@dataclass(frozen=True)
class PriceTable:
    """A revision's prices, all in minor units."""

    fixed_fee: int = 0
    price_per_second: int = 0
    estimated_seconds: int = 0
    external_estimate: int = 0
    may_incur_external_model_cost: bool = False
    external_cost_notice: str = ""
    token_prices: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Provider token prices this revision charges (model or ``model@resolution`` →
    per million tokens without / with a reference video), over the server's."""

    def __post_init__(self) -> None:
        for name in ("fixed_fee", "price_per_second", "estimated_seconds", "external_estimate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class Quote:
    """What a submit freezes, with its breakdown."""

    compute: int
    external: int

    @property
    def total(self) -> int:
        return self.compute + self.external


@dataclass(frozen=True)
class Settlement:
    """How a frozen amount resolves. ``final + released == frozen + shortfall`` always."""

    frozen: int
    compute_cost: int
    external_model_cost: int
    absorbed_external_cost: int
    final_amount: int
    released_amount: int
    shortfall_amount: int
    absorbed_over_limit: int = 0
    """Consumed beyond the run's ceiling (``domain.caps``), absorbed by the operator."""


def quote(prices: PriceTable) -> Quote:
    """The amount to freeze for a run of ``prices``."""
    estimate = prices.fixed_fee + prices.price_per_second * prices.estimated_seconds
    return Quote(compute=estimate, external=prices.external_estimate)


def compute_cost(prices: PriceTable, execution_ms: int, *, include_fixed_fee: bool = True) -> int:
    """Price of ``execution_ms`` milliseconds of execution."""
    if execution_ms < 0:
        raise ValueError("execution_ms must not be negative")
    per_time = round_div(prices.price_per_second * execution_ms, 1000)
    return per_time + (prices.fixed_fee if include_fixed_fee else 0)


def settle(
    *,
    frozen: int,
    compute: int,
    external: int,
    quoted_external: int,
    accept_external_cost_risk: bool,
) -> Settlement:
    """Resolve a freeze by what the run actually consumed."""
    if min(frozen, compute, external, quoted_external) < 0:
        raise ValueError("amounts must not be negative")
    charged_external = external if accept_external_cost_risk else min(external, quoted_external)
    final = compute + charged_external
    return Settlement(
        frozen=frozen,
        compute_cost=compute,
        external_model_cost=charged_external,
        absorbed_external_cost=external - charged_external,
        final_amount=final,
        released_amount=max(frozen - final, 0),
        shortfall_amount=max(final - frozen, 0),
    )


def release(frozen: int) -> Settlement:
    """Resolve a freeze by giving all of it back."""
    if frozen < 0:
        raise ValueError("frozen must not be negative")
    return Settlement(
        frozen=frozen,
        compute_cost=0,
        external_model_cost=0,
        absorbed_external_cost=0,
        final_amount=0,
        released_amount=frozen,
        shortfall_amount=0,
    )
