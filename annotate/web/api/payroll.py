"""Payroll runs through the API, for payment systems."""
from __future__ import annotations

from . import bp  # noqa: F401
