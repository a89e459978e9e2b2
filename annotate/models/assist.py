"""Model assistance: versioned assist models, the predictions they make, and the item
embeddings the built-in learner reads."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class AssistModel(Base):
    __tablename__ = "assist_model"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # builtin | backend
    version: Mapped[int]
    training_size: Mapped[int] = mapped_column(default=0)
    heldout_accuracy: Mapped[float | None]
    artifact_path: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """A model's proposed result for an item, shown as a pre-annotation."""

    __tablename__ = "prediction"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    assist_model_id: Mapped[int | None] = mapped_column(ForeignKey("assist_model.id", ondelete="SET NULL"), index=True)
    result: Mapped[list[Any]]
    # Confidence in [0, 1]: uncertainty order serves low scores first.
    score: Mapped[float | None]
    model_version: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ItemEmbedding(Base):
    """An item's text as the built-in learner reads it: a sentence embedding, computed once.

    Derived data, rebuilt on demand: a row whose encoder or text key is not the current one is
    computed again.
    """

    __tablename__ = "item_embedding"

    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), primary_key=True)
    encoder: Mapped[str] = mapped_column(String(120))  # annotate.assist.embedding.encoder_id()
    data_key: Mapped[str] = mapped_column(String(120))  # which field of the item's data was read
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # little-endian float16, embedding.DIMENSIONS of them


class MLBackend(Base):
    """An ML backend URL an operator allowed: projects may only call these (no server-side request forgery)."""

    __tablename__ = "ml_backend"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    url: Mapped[str] = mapped_column(String(500), unique=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The last health check: when it answered, and what went wrong if it did not.
    checked_at: Mapped[dt.datetime | None]
    last_ok_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
