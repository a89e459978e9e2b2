"""Labeling projects and their settings."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow
from .team import Team

PROJECT_STATUSES = ("draft", "live", "paused", "done")


class Project(Base):
    __tablename__ = "project"
    __table_args__ = (
        CheckConstraint("overlap >= 1", name="overlap_positive"),
        CheckConstraint("max_overlap >= overlap", name="max_overlap_covers_overlap"),
        CheckConstraint("items_per_micro_task >= 1", name="items_per_micro_task_positive"),
        CheckConstraint("pay_per_micro_task >= 0", name="pay_not_negative"),
        CheckConstraint("qualification_pay >= 0", name="qualification_pay_not_negative"),
        CheckConstraint("lease_seconds >= 30", name="lease_long_enough"),
        Index("ix_project_status_priority", "status", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    label_config: Mapped[str] = mapped_column(Text)
    # Coarse config type (text_classification, bounding_boxes, ...) for matching and skills.
    config_kind: Mapped[str] = mapped_column(String(32), default="other")
    instructions: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    archived_at: Mapped[dt.datetime | None]

    # Work shape.
    overlap: Mapped[int] = mapped_column(default=3)
    max_overlap: Mapped[int] = mapped_column(default=3)
    items_per_micro_task: Mapped[int] = mapped_column(default=10)
    lease_seconds: Mapped[int] = mapped_column(default=900)
    priority: Mapped[int] = mapped_column(default=0)
    gold_share: Mapped[float] = mapped_column(default=0.0)
    qualification_gold_count: Mapped[int] = mapped_column(default=0)
    qualification_min_accuracy: Mapped[float] = mapped_column(default=0.8)
    max_share_per_annotator: Mapped[float | None]
    content_categories: Mapped[list[Any]] = mapped_column(default=list)
    # ISO 639-1 codes an annotator must have declared to work on the project.
    required_languages: Mapped[list[Any]] = mapped_column(default=list)

    # Money, in integer minor units of `currency` (ISO 4217).
    pay_per_micro_task: Mapped[int] = mapped_column(BigInteger, default=0)
    qualification_pay: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    bonus_quality_target: Mapped[float | None]
    bonus_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_seconds_per_micro_task: Mapped[int | None]
    # When the requester needs the labels (UTC); matching ranks a project close to it higher.
    deadline: Mapped[dt.datetime | None]

    # Scoring and review.
    approve_quality_threshold: Mapped[float] = mapped_column(default=0.7)
    review_window_seconds: Mapped[int] = mapped_column(default=3 * 24 * 3600)
    confidence_target: Mapped[float] = mapped_column(default=0.7)
    iou_threshold: Mapped[float] = mapped_column(default=0.5)

    # Model assistance.
    show_predictions: Mapped[bool] = mapped_column(default=False)
    assist: Mapped[str] = mapped_column(String(16), default="none")
    ml_backend_url: Mapped[str | None] = mapped_column(String(500))
    unassisted_share: Mapped[float] = mapped_column(default=0.1)
    # Pre-annotations scored below this are not shown (0 shows every one).
    prediction_min_score: Mapped[float] = mapped_column(default=0.0)
    # The built-in learner retrains once the consensus labels grew by this share.
    retrain_growth: Mapped[float] = mapped_column(default=0.2)
    # Why the last call to the project's ML backend failed; None while it answers.
    assist_error: Mapped[str | None] = mapped_column(Text)
    queue_order: Mapped[str] = mapped_column(String(16), default="default")

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[dt.datetime | None]

    team: Mapped[Team] = relationship()

    @property
    def requires_qualification(self) -> bool:
        return self.qualification_gold_count > 0

    def __repr__(self) -> str:
        return f"<Project {self.id} {self.title!r} {self.status}>"


class ContentCategory(Base):
    """A kind of content a project may carry and an annotator may opt out of."""

    __tablename__ = "content_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
