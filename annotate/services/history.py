"""An annotator's own record, read-only: every assignment with what became of
it (status, decision, pay, a rejection's rule and reason, the appeal), and
their quality per project with the numbers behind it in plain words.

Only the annotator's own rows are ever read: every query is keyed by
`annotator_id`.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from ..extensions import db
from ..models import (AnnotatorScore, Appeal, Assignment, AssignmentScore, LedgerEntry, MicroTask,
                      MicroTaskItem, Project, utcnow)
from .reviews import APPEAL_DAYS

PER_PAGE = 50

APPEAL_WORDS = {
    "open": "appealed: waiting for the project's requesters",
    "escalated": "appealed: the requesters refused, an operator decides next",
    "granted": "appeal granted: the work is approved and paid",
    "refused": "appeal refused: the operator's decision is final",
}


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives naive datetimes back; every stored time is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def assignments(annotator_id: int, page: int = 1, per_page: int | None = None,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """One page of the annotator's assignments, newest first.

    Each row has its status and decision; `pay` is what the ledger holds for
    it (earning, bonus, top-ups) or, while it is pending, what approval would
    pay (`pay_expected`); a rejection carries its rule and reason, whether it
    can still be appealed and the appeal's state.
    """
    now = _aware(now or utcnow())
    per_page = per_page or PER_PAGE
    session = db.session
    total = session.scalar(select(func.count(Assignment.id)).where(Assignment.annotator_id == annotator_id))
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = session.execute(
        select(Assignment, MicroTask.is_qualification, Project.title, Project.pay_per_micro_task,
               Project.qualification_pay, Project.currency, Appeal)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .join(Project, Project.id == Assignment.project_id)
        .outerjoin(Appeal, Appeal.assignment_id == Assignment.id)
        .where(Assignment.annotator_id == annotator_id)
        .order_by(Assignment.leased_at.desc(), Assignment.id.desc())
        .limit(per_page).offset((page - 1) * per_page)).all()
    ids = [r[0].id for r in rows]
    paid: dict[int, dict[str, int]] = defaultdict(dict)
    for assignment_id, kind, amount in session.execute(
            select(LedgerEntry.assignment_id, LedgerEntry.kind, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.annotator_id == annotator_id, LedgerEntry.assignment_id.in_(ids))
            .group_by(LedgerEntry.assignment_id, LedgerEntry.kind)):
        paid[assignment_id][kind] = int(amount)
    n_items = dict(session.execute(
        select(MicroTaskItem.micro_task_id, func.count(MicroTaskItem.item_id))
        .where(MicroTaskItem.micro_task_id.in_({r[0].micro_task_id for r in rows}))
        .group_by(MicroTaskItem.micro_task_id)).all())
    qualification = {s.assignment_id: s.details.get("qualification") for s in session.scalars(
        select(AssignmentScore).where(AssignmentScore.assignment_id.in_(ids)))}
    out = []
    for a, is_qualification, title, pay, qualification_pay, currency, appeal in rows:
        decided_at = _aware(a.decided_at)
        deadline = decided_at + dt.timedelta(days=APPEAL_DAYS) if decided_at else None
        ledger = paid.get(a.id, {})
        q = qualification.get(a.id) if is_qualification else None
        out.append({
            "assignment_id": a.id, "project_id": a.project_id, "project_title": title,
            "micro_task_id": a.micro_task_id, "is_qualification": is_qualification,
            "n_items": n_items.get(a.micro_task_id, 0), "status": a.status, "decision": a.decision,
            "leased_at": _aware(a.leased_at), "submitted_at": _aware(a.submitted_at),
            "active_seconds": a.active_seconds, "skip_reason": a.skip_reason,
            "currency": currency, "pay": sum(ledger.values()) if ledger else None, "pay_parts": ledger,
            "pay_expected": (qualification_pay if is_qualification else pay)
            if a.status == "submitted" and a.decision == "pending" else None,
            "rule": a.decision_rule, "reason": a.decision_reason, "decided_at": decided_at,
            "qualification": {"passed": q["passed"], "rule": q["rule"],
                              "right": sum(1 for i in q["items"] if i["right"]), "total": len(q["items"])}
            if q else None,
            "appeal": {"status": appeal.status, "words": APPEAL_WORDS.get(appeal.status, appeal.status),
                       "reason": appeal.reason, "requester_response": appeal.requester_response,
                       "operator_response": appeal.operator_response, "created_at": _aware(appeal.created_at)}
            if appeal else None,
            "appeal_until": deadline,
            "can_appeal": a.decision == "rejected" and appeal is None and deadline is not None and now <= deadline,
        })
    session.rollback()
    return {"rows": out, "page": page, "pages": pages, "total": total, "per_page": per_page}


def quality(annotator_id: int) -> list[dict[str, Any]]:
    """The annotator's quality per project, with the numbers behind it and
    sentences that say them."""
    session = db.session
    rows = session.execute(
        select(AnnotatorScore, Project.title, Project.approve_quality_threshold)
        .join(Project, Project.id == AnnotatorScore.project_id)
        .where(AnnotatorScore.annotator_id == annotator_id)
        .order_by(Project.title, Project.id)).all()
    out = []
    for score, title, threshold in rows:
        numbers = (score.details or {}).get("quality", {})
        agreement = numbers.get("agreement", {})
        agreed, compared = int(agreement.get("n_agreed", 0)), int(agreement.get("n_compared", 0))
        window = (score.details or {}).get("window", {})
        words = [
            (f"You got {score.gold_right} of {score.gold_total} gold items right."
             if score.gold_total else "None of your items were gold items yet."),
            (f"Your answers matched the consensus of the other annotators on {agreed} of {compared} items."
             if compared else "None of your items has a consensus to compare with yet."),
            f"{score.n_items} items counted"
            + (f", from your latest {window['assignments']} scored micro-tasks (at most {window['limit']})."
               if window.get("assignments") else "."),
        ]
        if numbers:
            prior = f"{numbers.get('prior_right', 2):g} right in {numbers.get('prior_total', 4):g}"
            weight = numbers.get("gold_weight", 3)
            words.append(f"Each gold item counts {weight:g} times, and the score starts as if you had {prior}, "
                         "so a few answers cannot make it perfect or ruin it.")
        words.append(f"The project approves work on its own at quality {threshold:.2f} or above; "
                     "below that the requester reviews it.")
        out.append({"project_id": score.project_id, "title": title, "quality": score.quality,
                    "lower": numbers.get("lower"), "agreement": score.agreement, "gold_right": score.gold_right,
                    "gold_total": score.gold_total, "agreed": agreed, "compared": compared,
                    "n_items": score.n_items, "threshold": threshold, "words": words,
                    "explanation": (score.details or {}).get("explanation"), "updated_at": _aware(score.updated_at)})
    session.rollback()
    return out
