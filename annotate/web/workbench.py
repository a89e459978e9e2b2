"""The annotator's labeling page."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("workbench", __name__)
