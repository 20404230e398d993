"""``domain.caps``: UTC calendar periods, the ceiling (the lowest applicable cap) and the
clamp of a settlement to it (the overrun is absorbed, ``final + released`` still covers the
freeze)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from wfrun.domain import caps
from wfrun.domain.pricing import PriceTable, settle

SHANGHAI = timezone(timedelta(hours=8))


def test_periods_are_utc_calendar_days_and_months():
    late = datetime(2026, 12, 1, 7, 59, tzinfo=SHANGHAI)  # 2026-11-30 23:59 UTC
    assert caps.period_key(caps.Period.DAY, late) == "2026-11-30"
    assert caps.period_key(caps.Period.MONTH, late) == "2026-11"
    assert caps.period_key(caps.Period.DAY, late + timedelta(minutes=1)) == "2026-12-01"
    assert caps.period_key(caps.Period.MONTH, late + timedelta(minutes=1)) == "2026-12"
    assert caps.period_key(caps.Period.TOTAL, datetime(1999, 1, 1, tzinfo=UTC)) == "total"


def test_accrued_cost_is_the_fixed_fee_plus_time_rounded_half_up():
    prices = PriceTable(fixed_fee=1_000_000, price_per_second=3)
    assert caps.accrued_cost(prices, 500) == 1_000_000 + 2  # 1.5 → 2
    assert caps.accrued_cost(prices, -5) == 1_000_000  # a clock step back accrues nothing


def test_the_ceiling_is_the_lowest_applicable_cap():
    assert caps.ceiling(frozen=10, max_cost=None) is None
    assert caps.ceiling(frozen=10, max_cost=50) == caps.Ceiling(50, "max_cost")
    by_credit = caps.ceiling(frozen=10, max_cost=50, available=20, credit_limit=5)
    assert by_credit == caps.Ceiling(35, "credit limit")
    by_key = caps.ceiling(frozen=10, max_cost=50, available=20, credit_limit=5, key_room=3)
    assert by_key == caps.Ceiling(13, "key spend limit")
    assert caps.ceiling(frozen=10, max_cost=None, key_room=-40) == caps.Ceiling(
        0, "key spend limit"
    )


def test_a_run_stops_only_past_its_ceiling():
    cap = caps.Ceiling(100, "max_cost")
    assert not caps.reached(100, cap)  # a flat price equal to max_cost may finish
    assert caps.reached(101, cap)
    assert not caps.reached(10**12, None)


def test_a_clamped_settlement_charges_the_ceiling_and_records_the_overrun():
    over = settle(
        frozen=10, compute=70, external=0, quoted_external=0, accept_external_cost_risk=False
    )
    clamped = caps.clamp(over, caps.Ceiling(25, "max_cost"))
    assert (clamped.final_amount, clamped.released_amount, clamped.shortfall_amount) == (25, 0, 15)
    assert (clamped.absorbed_over_limit, clamped.compute_cost) == (45, 70)
    under = caps.clamp(over, caps.Ceiling(70, "max_cost"))
    assert under is over
    within = settle(
        frozen=10, compute=4, external=0, quoted_external=0, accept_external_cost_risk=False
    )
    assert caps.clamp(within, caps.Ceiling(5, "max_cost")) is within
    assert caps.clamp(within, None) is within
