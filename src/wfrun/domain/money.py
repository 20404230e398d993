"""Money: an ``int`` count of 1e-8 CNY ("minor units"). Never a float inside wfrun.

Parsing and formatting happen only at the edges (package files, CLI, wire); rounding happens
only in :func:`round_div`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

SCALE = 100_000_000
"""Minor units per yuan."""

CURRENCY = "CNY"


def parse_amount(value: str | int | Decimal) -> int:
    """Parse a yuan amount (``"0.03"``, ``"12"``) into minor units, exactly.

    Raises:
        ValueError: not a finite decimal, or finer than 1e-8.
        TypeError: a float or bool was passed.
    """
    if isinstance(value, bool | float):
        raise TypeError("amounts must be decimal strings or integers, not floats")
    try:
        dec = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal amount") from exc
    if not dec.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    scaled = dec * SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more than 8 decimal places")
    return int(scaled)


def format_amount(minor: int) -> str:
    """Format minor units as the wire's 8-decimal string: ``3000000`` → ``"0.03000000"``."""
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), SCALE)
    return f"{sign}{whole}.{frac:08d}"


def to_yuan_number(minor: int) -> float:
    """The JSON number chenyu's billing endpoints use (presentation only, at the edge)."""
    return float(Decimal(minor) / SCALE)


def round_div(numerator: int, denominator: int) -> int:
    """Integer division rounded half up: the one rounding rule for all money."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude
