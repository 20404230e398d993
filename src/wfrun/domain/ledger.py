"""Ledger postings: money moves only as balanced groups of postings (their sum is zero).

Buckets of a customer account: ``available`` and ``frozen`` (the cached balance columns must
always equal the sum of these postings). System buckets: ``funding`` (where top-ups come from)
and ``revenue`` (what runs were charged). Every movement below is balanced by construction.

- top-up:  funding → available
- freeze:  available → frozen
- settle:  frozen → revenue (final) and frozen → available (the rest); a shortfall is charged
           available → revenue, so available may go below zero
- release: frozen → available (all of it)
- refund:  revenue → available (an operator gives back part or all of a run's final amount;
           a compensating entry, never an edit of the run's own)
- adjust:  adjustment ↔ available (an operator's correction: a credit or a debit)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wfrun.domain.pricing import Settlement


class Bucket(StrEnum):
    AVAILABLE = "available"
    FROZEN = "frozen"
    FUNDING = "funding"
    REVENUE = "revenue"
    ADJUSTMENT = "adjustment"
    """The other side of operators' balance corrections."""


class EntryKind(StrEnum):
    TOPUP = "topup"
    FREEZE = "freeze"
    SETTLE = "settle"
    RELEASE = "release"
    REFUND = "refund"
    ADJUST = "adjust"


@dataclass(frozen=True)
class Posting:
    bucket: Bucket
    amount: int


def _balanced(postings: list[Posting]) -> list[Posting]:
    if sum(p.amount for p in postings) != 0:
        raise AssertionError(f"unbalanced postings: {postings}")
    return [p for p in postings if p.amount != 0]


def topup(amount: int) -> list[Posting]:
    if amount <= 0:
        raise ValueError("a top-up must be positive")
    return _balanced([Posting(Bucket.FUNDING, -amount), Posting(Bucket.AVAILABLE, amount)])


def freeze(amount: int) -> list[Posting]:
    if amount < 0:
        raise ValueError("a freeze must not be negative")
    return _balanced([Posting(Bucket.AVAILABLE, -amount), Posting(Bucket.FROZEN, amount)])


def resolve(settlement: Settlement) -> list[Posting]:
    """Postings that resolve a freeze per ``settlement`` (settle or release)."""
    final = settlement.final_amount
    return _balanced(
        [
            Posting(Bucket.FROZEN, -settlement.frozen),
            Posting(Bucket.REVENUE, final),
            Posting(Bucket.AVAILABLE, settlement.frozen - final),
        ]
    )


def refund(amount: int) -> list[Posting]:
    if amount <= 0:
        raise ValueError("a refund must be positive")
    return _balanced([Posting(Bucket.REVENUE, -amount), Posting(Bucket.AVAILABLE, amount)])


def adjust(amount: int) -> list[Posting]:
    """A correction: a credit (``amount`` > 0) or a debit (< 0) of available."""
    if amount == 0:
        raise ValueError("an adjustment must not be zero")
    return _balanced([Posting(Bucket.ADJUSTMENT, -amount), Posting(Bucket.AVAILABLE, amount)])


def balance_deltas(postings: list[Posting]) -> tuple[int, int]:
    """(available delta, frozen delta) of a customer account for ``postings``."""
    available = sum(p.amount for p in postings if p.bucket is Bucket.AVAILABLE)
    frozen = sum(p.amount for p in postings if p.bucket is Bucket.FROZEN)
    return available, frozen
