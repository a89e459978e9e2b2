"""Skills and annotators' levels in them, with the evidence behind each level."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Skill(Base):
    __tablename__ = "skill"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Set for the skills the platform keeps per config type.
    config_kind: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProjectSkill(Base):
    """A project's use of a skill: a filter (minimum level) and what qualification grants."""

    __tablename__ = "project_skill"
    __table_args__ = (UniqueConstraint("project_id", "skill_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skill.id", ondelete="CASCADE"), index=True)
    min_level: Mapped[int] = mapped_column(default=0)


class SkillLevel(Base):
    __tablename__ = "skill_level"
    __table_args__ = (
        UniqueConstraint("annotator_id", "skill_id"),
        CheckConstraint("level >= 0 AND level <= 100", name="level_in_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skill.id", ondelete="CASCADE"), index=True)
    level: Mapped[int]
    confidence: Mapped[float] = mapped_column(default=0.0)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A hash of `evidence` as last written by a recomputation, which compares it with the
    # evidence it computes instead of decoding every stored document; None: written otherwise.
    evidence_digest: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SkillLevelChange(Base):
    """History of a level: every recomputation and every operator adjustment."""

    __tablename__ = "skill_level_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    skill_level_id: Mapped[int] = mapped_column(ForeignKey("skill_level.id", ondelete="CASCADE"), index=True)
    level: Mapped[int]
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
