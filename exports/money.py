"""Money as text: integer minor units shown as exact decimals, never via float."""
from __future__ import annotations

from annotate.scoring.currency import minor_digits


def decimal_text(minor: int, currency: str) -> str:
    """1250, "USD" -> "12.50"; -5, "USD" -> "-0.05"; 300, "JPY" -> "300"."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"money is an int in minor units, got {minor!r}")
    digits = minor_digits(currency)
    sign, minor = ("-" if minor < 0 else ""), abs(minor)
    if digits == 0:
        return f"{sign}{minor}"
    whole, part = divmod(minor, 10 ** digits)
    return f"{sign}{whole}.{part:0{digits}d}"


def divide_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves away from zero."""
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    sign = -1 if numerator < 0 else 1
    return sign * ((2 * abs(numerator) + denominator) // (2 * denominator))
