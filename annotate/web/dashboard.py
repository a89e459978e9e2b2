"""The annotator's dashboard: open projects, earnings, quality, history."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__)
