"""Numbers behind the operator console's charts."""
from __future__ import annotations

from . import bp  # noqa: F401
