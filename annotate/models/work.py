"""The unit of work and its lifecycle: micro-tasks, assignments, annotations, appeals."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

MICRO_TASK_STATUSES = ("open", "done")
# leased -> submitted | expired | skipped | released. Only `leased` is live.
ASSIGNMENT_STATUSES = ("leased", "submitted", "expired", "skipped", "released")
# A submitted assignment is then approved or rejected.
DECISIONS = ("pending", "approved", "rejected")


class MicroTask(Base):
    """A fixed batch of items, handed out to `overlap` distinct annotators."""

    __tablename__ = "micro_task"
    __table_args__ = (
        # SQL's own guard on invariant 1, whatever Redis believes.
        CheckConstraint("taken >= 0 AND taken <= overlap", name="taken_within_overlap"),
        CheckConstraint("submitted >= 0 AND submitted <= taken", name="submitted_within_taken"),
        UniqueConstraint("project_id", "seq"),
        Index("ix_micro_task_project_id_status", "project_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    # Order of creation within the project: the queue's age order.
    seq: Mapped[int]
    is_qualification: Mapped[bool] = mapped_column(default=False)
    overlap: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Live or submitted assignments, and submitted ones alone.
    taken: Mapped[int] = mapped_column(default=0)
    submitted: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None]

    items: Mapped[list["MicroTaskItem"]] = relationship(
        order_by="MicroTaskItem.position", cascade="all, delete-orphan"
    )


class MicroTaskItem(Base):
    __tablename__ = "micro_task_item"
    __table_args__ = (UniqueConstraint("micro_task_id", "item_id"),)

    micro_task_id: Mapped[int] = mapped_column(ForeignKey("micro_task.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)


class Assignment(Base):
    """One annotator's lease on one micro-task, and what became of it."""

    __tablename__ = "assignment"
    __table_args__ = (
        # Invariant 2: one assignment per annotator and micro-task, ever.
        UniqueConstraint("micro_task_id", "annotator_id"),
        Index("ix_assignment_annotator_id_status", "annotator_id", "status"),
        Index("ix_assignment_status_lease_expires_at", "status", "lease_expires_at"),
        Index("ix_assignment_project_id_decision", "project_id", "decision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    micro_task_id: Mapped[int] = mapped_column(ForeignKey("micro_task.id", ondelete="CASCADE"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    # Denormalised from the micro-task so per-project queries need no join.
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="leased")
    leased_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    skip_reason: Mapped[str | None] = mapped_column(Text)
    active_seconds: Mapped[float] = mapped_column(default=0.0)
    with_predictions: Mapped[bool] = mapped_column(default=False)

    decision: Mapped[str | None] = mapped_column(String(16))
    # The rule a rejection rests on, shown to the worker.
    decision_rule: Mapped[str | None] = mapped_column(String(64))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)

    micro_task: Mapped[MicroTask] = relationship()
    annotations: Mapped[list["Annotation"]] = relationship(back_populates="assignment", order_by="Annotation.id")


class Annotation(Base):
    """One annotator's result for one item, in Label Studio result JSON."""

    __tablename__ = "annotation"
    __table_args__ = (UniqueConstraint("assignment_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    result: Mapped[list[Any]]
    # Active seconds on this item, paused while the tab was hidden or idle.
    seconds: Mapped[float] = mapped_column(default=0.0)
    # Whether a pre-annotation was shown, and accepted unchanged (anchoring guard).
    had_prediction: Mapped[bool] = mapped_column(default=False)
    accepted_prediction: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    assignment: Mapped[Assignment] = relationship(back_populates="annotations")


APPEAL_STATUSES = ("open", "escalated", "granted", "refused")


class Appeal(Base):
    """A worker's appeal against a rejection: requester first, then an operator."""

    __tablename__ = "appeal"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id", ondelete="CASCADE"), unique=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    requester_response: Mapped[str | None] = mapped_column(Text)
    operator_response: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
