"""Exports through the API, in Label Studio's dialect where shared."""
from __future__ import annotations

from . import bp  # noqa: F401
