"""Operators' payroll runs."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("payroll", __name__)
