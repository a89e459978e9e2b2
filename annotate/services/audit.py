"""Writing the audit log. Called inside the transaction of the decision it records."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..models import AuditEntry


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    target_type: str,
    target_id: int,
    reason: str = "",
    **details: Any,
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=actor_id, action=action, target_type=target_type,
        target_id=target_id, reason=reason, details=details,
    )
    session.add(entry)
    return entry
