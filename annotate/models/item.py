"""Items to label and the known answers of gold items."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow


class Item(Base):
    __tablename__ = "item"
    __table_args__ = (
        # Uploading the same data twice into a project is refused as a duplicate.
        UniqueConstraint("project_id", "content_hash"),
        Index("ix_item_project_id_is_gold", "project_id", "is_gold"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    # Label Studio task `data`: {"text": ...} or {"image": "/media/ab/cd/...jpg"}.
    data: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    is_gold: Mapped[bool] = mapped_column(default=False)
    import_job_id: Mapped[int | None] = mapped_column(ForeignKey("background_job.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    gold_answer: Mapped["GoldAnswer | None"] = relationship(back_populates="item", cascade="all, delete-orphan")


class GoldAnswer(Base):
    """The expected result of a gold item, in Label Studio result JSON."""

    __tablename__ = "gold_answer"

    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), primary_key=True)
    result: Mapped[list[Any]]
    # Shown to an annotator whose answer differed, so they learn why.
    explanation: Mapped[str] = mapped_column(Text, default="")

    item: Mapped[Item] = relationship(back_populates="gold_answer")
