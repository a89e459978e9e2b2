"""Background-job records: status, progress and errors live in SQL, not in Redis."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

JOB_STATUSES = ("queued", "running", "finished", "failed")


class BackgroundJob(Base):
    """One RQ background job as users see it: an import, an export, a publish..."""

    __tablename__ = "background_job"
    __table_args__ = (Index("ix_background_job_project_id_kind", "project_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rq_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Problems a user caused, each with where it is: [{"line": 12, "message": ...}].
    errors: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
