"""Money: an ``int`` count of 1e-8 CNY ("minor units"). Never a float inside wfrun.

Parsing and formatting happen only at the edges (package files, CLI, wire); rounding happens
only in :func:`round_div`.
"""

from __future__ import annotations

import re
from decimal import Decimal

SCALE = 100_000_000
"""Minor units per yuan."""

CURRENCY = "CNY"

MAX_MINOR = 2**63 - 1
"""The largest amount the database holds (a signed 64-bit ``BigInteger``), in minor units."""

_MAX_WHOLE_DIGITS = len(str(MAX_MINOR // SCALE))
_PLAIN_DECIMAL = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")


def parse_amount(value: str | int | Decimal) -> int:
    """Parse a yuan amount (``"0.03"``, ``"12"``, ``"-1.5"``) into minor units, exactly.

    Text must be a plain decimal: ASCII digits, an optional leading ``-`` and decimal point,
    no exponent (``1e3``), no ``NaN``/``Infinity``, no other digits (``²``, ``١``).

    Raises:
        ValueError: not a plain decimal, finer than 1e-8, or beyond :data:`MAX_MINOR`.
        TypeError: a float or bool was passed.
    """
    if isinstance(value, bool | float):
        raise TypeError("amounts must be decimal strings or integers, not floats")
    text = format(value, "f") if isinstance(value, Decimal) else str(value).strip()
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        raise ValueError(f"{shown} is not a plain decimal amount (like 12 or 0.50)")
    whole, fraction = match.group(1).lstrip("0"), (match.group(2) or "").rstrip("0")
    if len(fraction) > 8:
        raise ValueError(f"{shown} has more than 8 decimal places")
    minor = int(whole[: _MAX_WHOLE_DIGITS + 1] or 0) * SCALE + int(fraction.ljust(8, "0"))
    if len(whole) > _MAX_WHOLE_DIGITS or minor > MAX_MINOR:
        limit = format_amount(MAX_MINOR)
        raise ValueError(f"{shown} is out of range (amounts are at most {limit})")
    return -minor if text.startswith("-") else minor


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
