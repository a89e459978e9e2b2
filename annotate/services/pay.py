"""Money for work: approving an assignment and paying it, bonuses, and the
fair-pay top-up.

Every movement is a ledger entry with an idempotency key, written with
INSERT ... ON CONFLICT DO NOTHING, so a retried or concurrent background
job can never pay twice: one earning per assignment
(``earning:assignment:{id}``), one quality bonus per assignment
(``bonus:quality:assignment:{id}``), and top-ups keyed by the pay they bring
an assignment up to (``top_up:assignment:{id}:{target}``, see
`fair_pay_top_ups`). Nothing is ever deleted or changed in the ledger.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Assignment, LedgerEntry, MicroTask, Project, utcnow
from ..scoring import pay as pay_rules
from .errors import NotFound

log = logging.getLogger(__name__)

DEFAULT_PAY_FLOORS = "USD:1200,EUR:1100,GBP:1000"


def pay_floors() -> dict[str, int]:
    """The platform's minimum hourly pay per currency, in minor units (PAY_FLOORS).

    Parsed as `annotate.services.work.pay_floors` does; kept here so money
    code does not import the dispatch engine.
    """
    raw = current_app.config.get("PAY_FLOORS", DEFAULT_PAY_FLOORS)
    floors = {}
    for part in raw.split(","):
        currency, _, amount = part.strip().partition(":")
        if currency and amount.isdigit():
            floors[currency.upper()] = int(amount)
    return floors


# --------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------


def add_entry(session: Session, *, key: str, annotator_id: int, kind: str, amount: int, currency: str,
              project_id: int | None = None, assignment_id: int | None = None, memo: str = "",
              created_by_id: int | None = None) -> bool:
    """Append one ledger entry unless one with ``key`` exists; True if this call wrote it.

    The unique idempotency key decides, in the database: a concurrent
    transaction inserting the same key waits for ours and then does nothing.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"money is an int in minor units, got {amount!r}")
    values = dict(idempotency_key=key, annotator_id=annotator_id, kind=kind, amount=amount, currency=currency,
                  project_id=project_id, assignment_id=assignment_id, memo=memo, created_by_id=created_by_id,
                  created_at=utcnow())
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(LedgerEntry).values(**values)
            .on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(LedgerEntry.id))
    # A row comes back only when this statement inserted it.
    return session.execute(stmt).scalar() is not None


def earning_key(assignment_id: int) -> str:
    return f"earning:assignment:{assignment_id}"


def bonus_key(assignment_id: int) -> str:
    return f"bonus:quality:assignment:{assignment_id}"


def base_pay(project: Project, micro_task: MicroTask) -> int:
    """What one approved assignment of this micro-task earns: qualification work is paid too."""
    return project.qualification_pay if micro_task.is_qualification else project.pay_per_micro_task


def approve(session: Session, assignment: Assignment, project: Project, micro_task: MicroTask, *, rule: str,
            reason: str, by_id: int | None = None, allowed_from: tuple[str, ...] = ("pending",),
            now: dt.datetime | None = None) -> bool:
    """Approve a submitted assignment and write its earning; False if it was not in ``allowed_from``.

    The guarded UPDATE makes a concurrent approval of the same assignment
    find nothing to do; the earning's key is the last guard.
    """
    now = now or utcnow()
    changed = session.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == "submitted",
               Assignment.decision.in_(allowed_from))
        .values(decision="approved", decision_rule=rule[:64], decision_reason=reason, decided_at=now,
                decided_by_id=by_id)
        .returning(Assignment.id)
    ).scalar()
    if changed is None:
        return False
    amount = base_pay(project, micro_task)
    if amount > 0:
        what = "qualification micro-task" if micro_task.is_qualification else "micro-task"
        add_entry(session, key=earning_key(assignment.id), annotator_id=assignment.annotator_id, kind="earning",
                  amount=amount, currency=project.currency, project_id=project.id, assignment_id=assignment.id,
                  memo=f"{what} {micro_task.id} approved ({rule})", created_by_id=by_id)
    return True


def pay_quality_bonus(session: Session, assignment: Assignment, project: Project, quality: float) -> bool:
    """The project's quality bonus, once per assignment, when quality reaches its target."""
    target = project.bonus_quality_target
    if target is None or project.bonus_amount <= 0 or not quality >= target:
        return False
    return add_entry(session, key=bonus_key(assignment.id), annotator_id=assignment.annotator_id, kind="bonus",
                     amount=project.bonus_amount, currency=project.currency, project_id=project.id,
                     assignment_id=assignment.id,
                     memo=f"quality {quality:.2f} at or above the project's bonus target {target:.2f}")


# --------------------------------------------------------------------------
# The fair-pay floor
# --------------------------------------------------------------------------


def fair_pay_top_ups(project_id: int) -> dict[str, Any]:
    """Top up approved work on a project whose measured hourly rate is below the floor.

    The rate is the base pay per micro-task over the median active seconds
    of the project's submitted (non-qualification) work. Below the floor,
    every approved assignment is brought to ``target = pay_for_rate(floor,
    median)``: its top-up is ``target - (earning + earlier top-ups)``, under
    the key ``top_up:assignment:{id}:{target}``. Re-running with the same
    median writes nothing; when more work moves the median up, only the
    difference to the new target is added; when it moves down, nothing is
    taken back (the ledger is append-only). The project row is locked so two
    runs with different medians cannot both pay the same difference.
    Bonuses do not count towards the floor.
    """
    with db.transaction() as session:
        project = session.scalar(select(Project).where(Project.id == project_id).with_for_update())
        if project is None:
            raise NotFound(f"no project {project_id}")
        floor = pay_floors().get(project.currency)
        regular = (select(Assignment.id, Assignment.annotator_id, Assignment.active_seconds, Assignment.decision)
                   .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
                   .where(Assignment.project_id == project_id, Assignment.status == "submitted",
                          MicroTask.is_qualification.is_(False)))
        rows = session.execute(regular).all()
        seconds = [r.active_seconds for r in rows if r.active_seconds > 0]
        summary: dict[str, Any] = {"project_id": project_id, "currency": project.currency, "floor": floor,
                                   "median_seconds": None, "rate": None, "target": None, "entries": 0, "amount": 0}
        if floor is None or not seconds:
            summary["why"] = "no pay floor for this currency" if floor is None else "no measured work yet"
            return summary
        median = pay_rules.median_seconds(seconds)
        rate = pay_rules.hourly_rate(project.pay_per_micro_task, median)
        summary.update(median_seconds=median, rate=rate)
        if rate >= floor:
            summary["why"] = f"{rate} per hour meets the floor of {floor}"
            return summary
        target = pay_rules.pay_for_rate(floor, median)
        summary["target"] = target
        approved = [r for r in rows if r.decision == "approved"]
        paid = dict(session.execute(
            select(LedgerEntry.assignment_id, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.project_id == project_id, LedgerEntry.kind.in_(("earning", "top_up")))
            .group_by(LedgerEntry.assignment_id)).all())
        for row in approved:
            already = int(paid.get(row.id) or 0)
            top_up = pay_rules.fair_pay_top_up(already, median, floor)
            if top_up <= 0:
                continue
            if add_entry(session, key=f"top_up:assignment:{row.id}:{target}", annotator_id=row.annotator_id,
                         kind="top_up", amount=int(top_up), currency=project.currency, project_id=project_id,
                         assignment_id=row.id,
                         memo=(f"fair-pay floor: {project.pay_per_micro_task} in a median {median} s is {rate} "
                               f"per hour, below the floor of {floor}; brought to {target}")):
                summary["entries"] += 1
                summary["amount"] += int(top_up)
        if summary["entries"]:
            log.info("fair-pay top-ups on project %s: %s", project_id, summary)
        return summary
