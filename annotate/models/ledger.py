"""Money: append-only ledger entries and the payroll runs that pay them."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

LEDGER_KINDS = ("earning", "bonus", "top_up", "adjustment")


class LedgerEntry(Base):
    """One money movement in integer minor units. Never updated, except to
    record the one payroll run that pays it."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint("kind IN ('earning', 'bonus', 'top_up', 'adjustment')", name="kind_known"),
        Index("ix_ledger_entry_payroll_run_id_created_at", "payroll_run_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="SET NULL"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignment.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # e.g. "earning:assignment:42": a retried background job can never pay twice.
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    memo: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A single column: an entry can belong to one run at most.
    payroll_run_id: Mapped[int | None] = mapped_column(ForeignKey("payroll_run.id"), index=True)


PAYROLL_STATUSES = ("closed", "paid")


class PayrollRun(Base):
    __tablename__ = "payroll_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_end: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="closed")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[dt.datetime | None]
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    # Totals per currency at closing, kept to reconcile against the entries.
    totals: Mapped[dict[str, Any]] = mapped_column(default=dict)
