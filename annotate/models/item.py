"""Items to label and the known answers of gold items."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow


class Item(Base):
    __tablename__ = "item"
    __table_args__ = (
        # Uploading the same data twice into a project is refused as a duplicate.
        # Led by project_id, it is also the index that finds a project's items:
        # each index more costs the bulk import a B-tree insert per row.
        UniqueConstraint("project_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    # Label Studio task `data`: {"text": ...} or {"image": "/media/ab/cd/...jpg"}.
    data: Mapped[dict[str, Any]]
    # The first 64 bits of the SHA-256 of the canonical JSON of `data`: a
    # small key keeps the unique index cheap on bulk import, and a chance
    # collision (about 1 in 10^8 at a million items) would only refuse a row.
    content_hash: Mapped[int] = mapped_column(BigInteger)
    is_gold: Mapped[bool] = mapped_column(default=False)
    # Annotations that came with the upload (Label Studio JSON), kept for export.
    imported_annotations: Mapped[list[Any] | None]
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
