"""Scoring as pure functions of NumPy arrays: no ORM, no Flask.

- `agreement`: Krippendorff's alpha, per-item agreement, set, region, span
  and free-text agreement.
- `consensus`: majority vote, Dawid-Skene, box fusion, span voting, asking
  for more annotators.
- `quality`: gold accuracy, agreement with consensus and annotator quality,
  each keeping the numbers that explain it.
- `pay`: approve or reject, bonus, hourly rate, fair-pay top-up, in
  integer minor units.
- `currency`: the ISO 4217 minor-unit digits of each currency, the one table
  pages, payroll files and matching use.
"""
