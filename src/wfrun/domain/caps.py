"""Spending caps as pure functions over integer minor units (issue 16).

A run's *ceiling* is the most it may be charged: the lowest of its ``max_cost`` (when set),
its freeze plus the account's available balance plus the operator's credit limit (so the
balance never goes below minus the credit limit), and its key's remaining spend limit plus its
own freeze (when the key has a limit). A running run whose accrued cost passes its ceiling is
stopped; a settlement above it is clamped to it and the operator absorbs the rest.

Spend limits count per UTC calendar day, per UTC calendar month, or in total (never reset);
:func:`period_key` names the period a moment falls in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from wfrun.domain.pricing import PriceTable, Settlement, compute_cost


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


def period_key(period: Period, at: datetime) -> str:
    """The counter a moment falls in: ``2026-11-30`` (day), ``2026-11`` (month), ``total``."""
    utc = at.astimezone(UTC)
    if period is Period.DAY:
        return utc.strftime("%Y-%m-%d")
    if period is Period.MONTH:
        return utc.strftime("%Y-%m")
    return "total"


def accrued_cost(prices: PriceTable, elapsed_ms: int) -> int:
    """What a run has cost after ``elapsed_ms`` of execution (its fixed fee included)."""
    return compute_cost(prices, max(elapsed_ms, 0))


@dataclass(frozen=True)
class Ceiling:
    """The most a run may be charged, and the cap that sets it (for the detail)."""

    amount: int
    why: str


def ceiling(
    *,
    frozen: int,
    max_cost: int | None,
    available: int | None = None,
    credit_limit: int = 0,
    key_room: int | None = None,
) -> Ceiling | None:
    """The lowest applicable cap; None when none applies. ``available`` is the account's
    available balance (None: not consulted); ``key_room`` is what the key may still spend in
    its period besides this run's own freeze (None: no limit)."""
    caps: list[Ceiling] = []
    if max_cost is not None:
        caps.append(Ceiling(max_cost, "max_cost"))
    if available is not None:
        caps.append(Ceiling(frozen + available + credit_limit, "credit limit"))
    if key_room is not None:
        caps.append(Ceiling(frozen + key_room, "key spend limit"))
    if not caps:
        return None
    lowest = min(caps, key=lambda cap: cap.amount)
    return Ceiling(max(lowest.amount, 0), lowest.why)


def reached(accrued: int, cap: Ceiling | None) -> bool:
    """Whether a run that has accrued ``accrued`` must stop: it is past its ceiling (a run
    exactly at it, e.g. a flat-priced one whose quote is its ``max_cost``, may finish)."""
    return cap is not None and accrued > cap.amount


def clamp(settlement: Settlement, cap: Ceiling | None) -> Settlement:
    """``settlement`` charged at most ``cap``; the part above it is absorbed by the operator."""
    if cap is None or settlement.final_amount <= cap.amount:
        return settlement
    final = cap.amount
    return replace(
        settlement,
        final_amount=final,
        released_amount=max(settlement.frozen - final, 0),
        shortfall_amount=max(final - settlement.frozen, 0),
        absorbed_over_limit=settlement.final_amount - final,
    )
