"""Pseudonyms for annotator ids, one secret salt per export.

Within one export an annotator always has the same pseudonym, so a team can
tell annotators apart; across exports the pseudonyms differ, so two exports
cannot be joined to follow a person, and none leads back to our user ids.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets


class Pseudonyms:
    """HMAC-SHA256 of the annotator id under a random salt, shortened to 16 hex digits."""

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = salt if salt is not None else secrets.token_bytes(32)
        self._known: dict[int, str] = {}

    def __call__(self, annotator_id: int) -> str:
        known = self._known.get(annotator_id)
        if known is None:
            digest = hmac.new(self._salt, str(annotator_id).encode(), hashlib.sha256).hexdigest()
            known = self._known[annotator_id] = digest[:16]
        return known
