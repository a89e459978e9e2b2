"""ISO 4217 minor units: how many decimal digits a currency's minor unit has.

Money is an integer count of minor units everywhere; these digits turn it
into major units for the pages (`annotate.web.projects.money`), payroll
files (`exports.money`) and matching's exchange rates
(`annotate.scoring.matching.in_ranking_currency`). One table, so a page, a
payroll file and the ranking never disagree on what 100 JPY are.
"""
from __future__ import annotations

# Currencies whose minor unit is not a hundredth.
MINOR_DIGITS = {**dict.fromkeys(("JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG", "XPF"), 0),
                **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}


def minor_digits(currency: str) -> int:
    """Decimal digits of the currency's minor unit: 2 for USD, 0 for JPY, 3 for KWD."""
    return MINOR_DIGITS.get(currency, 2)
