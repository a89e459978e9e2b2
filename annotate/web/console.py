"""The operator console: annotators, queues, background jobs, progress, fairness, audit log."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__)
