"""Scores: consensus and agreement per item, quality per assignment and annotator."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class ItemScore(Base):
    __tablename__ = "item_score"

    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    consensus: Mapped[list[Any]]
    confidence: Mapped[float]
    agreement: Mapped[float]
    n_annotators: Mapped[int]
    method: Mapped[str] = mapped_column(String(32))
    # Below the project's confidence target: may ask for more annotators.
    flagged: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AssignmentScore(Base):
    __tablename__ = "assignment_score"

    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id", ondelete="CASCADE"), primary_key=True)
    quality: Mapped[float]
    agreement: Mapped[float | None]
    gold_right: Mapped[int] = mapped_column(default=0)
    gold_total: Mapped[int] = mapped_column(default=0)
    # The numbers behind the score, so the worker's page can explain it.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AnnotatorScore(Base):
    """An annotator's quality on one project over the rolling window."""

    __tablename__ = "annotator_score"
    __table_args__ = (UniqueConstraint("annotator_id", "project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    quality: Mapped[float]
    agreement: Mapped[float | None]
    gold_right: Mapped[int] = mapped_column(default=0)
    gold_total: Mapped[int] = mapped_column(default=0)
    n_items: Mapped[int] = mapped_column(default=0)
    # Confusion matrix and the other numbers behind the score.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProjectScore(Base):
    """Project-wide agreement, e.g. Krippendorff's alpha with its interval."""

    __tablename__ = "project_score"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    alpha: Mapped[float | None]
    alpha_low: Mapped[float | None]
    alpha_high: Mapped[float | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
