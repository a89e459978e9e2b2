"""Requesters' reviews of submitted work, and appeals."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reviews", __name__)
