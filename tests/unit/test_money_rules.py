"""Money, pricing, ledger postings and the run state machine: pure rules, property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfrun.domain import ledger
from wfrun.domain.money import format_amount, parse_amount, round_div
from wfrun.domain.pricing import PriceTable, compute_cost, quote, release, settle
from wfrun.domain.runs import TERMINAL, TRANSITIONS, RunStatus, is_terminal, transition
from wfrun.errors import InvalidTransition

amounts = st.integers(min_value=0, max_value=10**15)


class TestMoney:
    @pytest.mark.parametrize(
        ("text", "minor"),
        [("0.03", 3_000_000), ("12", 1_200_000_000), ("0.00000001", 1), ("-1.5", -150_000_000)],
    )
    def test_parse(self, text, minor):
        assert parse_amount(text) == minor

    @pytest.mark.parametrize("bad", ["0.000000001", "abc", "NaN", "Infinity", ""])
    def test_parse_rejects(self, bad):
        with pytest.raises(ValueError, match=r"."):
            parse_amount(bad)

    def test_floats_are_refused(self):
        with pytest.raises(TypeError):
            parse_amount(0.1)  # type: ignore[arg-type]

    @given(st.integers(min_value=-(10**18), max_value=10**18))
    def test_format_round_trips(self, minor):
        text = format_amount(minor)
        assert len(text.split(".")[1]) == 8
        assert parse_amount(text) == minor

    @pytest.mark.parametrize(
        ("n", "d", "expected"), [(5, 10, 1), (4, 10, 0), (15, 10, 2), (-5, 10, -1), (0, 7, 0)]
    )
    def test_round_half_up(self, n, d, expected):
        assert round_div(n, d) == expected


class TestPricing:
    def test_quote_and_compute_cost(self):
        prices = PriceTable(fixed_fee=1_000_000, price_per_second=200_000, estimated_seconds=10)
        assert quote(prices).total == 3_000_000
        assert compute_cost(prices, 1500) == 1_300_000
        assert compute_cost(prices, 1500, include_fixed_fee=False) == 300_000
        assert compute_cost(prices, 1) == 1_000_200

    @given(frozen=amounts, compute=amounts, external=amounts, quoted=amounts, accept=st.booleans())
    def test_settlement_conserves_money(self, frozen, compute, external, quoted, accept):
        s = settle(
            frozen=frozen,
            compute=compute,
            external=external,
            quoted_external=quoted,
            accept_external_cost_risk=accept,
        )
        assert s.final_amount + s.released_amount == s.frozen + s.shortfall_amount
        assert min(s.released_amount, s.shortfall_amount) == 0
        assert s.external_model_cost + s.absorbed_external_cost == external
        if not accept:
            assert s.external_model_cost <= quoted
        postings = ledger.resolve(s)
        assert sum(p.amount for p in postings) == 0
        available, frozen_delta = ledger.balance_deltas(postings)
        assert frozen_delta == -frozen
        assert available == frozen - s.final_amount

    @given(frozen=amounts)
    def test_release_returns_everything(self, frozen):
        s = release(frozen)
        assert (s.final_amount, s.released_amount) == (0, frozen)
        assert ledger.balance_deltas(ledger.resolve(s)) == (frozen, -frozen)

    @given(amount=st.integers(min_value=1, max_value=10**15))
    def test_freeze_and_topup_balance(self, amount):
        for postings in (ledger.freeze(amount), ledger.topup(amount)):
            assert sum(p.amount for p in postings) == 0

    def test_negative_prices_are_refused(self):
        with pytest.raises(ValueError, match="fixed_fee"):
            PriceTable(fixed_fee=-1)


class TestRunStateMachine:
    @pytest.mark.parametrize("current", list(RunStatus))
    @pytest.mark.parametrize("target", list(RunStatus))
    def test_only_listed_transitions_are_allowed(self, current, target):
        if target in TRANSITIONS[current]:
            assert transition(current, target) is target
        else:
            with pytest.raises(InvalidTransition):
                transition(current, target)

    def test_terminal_states_are_absorbing(self):
        assert {s for s in RunStatus if is_terminal(s)} == set(TERMINAL)
        for status in TERMINAL:
            assert TRANSITIONS[status] == frozenset()
        assert RunStatus.RUNNING not in TRANSITIONS[RunStatus.RUNNING]
