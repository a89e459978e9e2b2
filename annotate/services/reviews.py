"""Requester review of submitted work, and appeals against rejections.

Requesters of the project's team approve or reject pending work; a
rejection names the rule it rests on, which the worker sees. The worker may
appeal a rejection within `APPEAL_DAYS`: the requester answers first, a
refusal goes to an operator, whose decision is final and audited. Work
still pending when the project's review window passes is approved by
`approve_overdue`. Approving pays the earning through
`annotate.services.pay.approve` (one earning per assignment, ever); only
pending or rejected work can be approved, so nothing paid is ever undone.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Appeal, Assignment, AssignmentScore, Membership, MicroTask, Project, User, utcnow
from . import audit, pay, projects
from .accounts import require_operator
from .errors import Conflict, Forbidden, Invalid, NotFound

APPEAL_DAYS = 7
RULE_REQUESTER = "approved_by_requester"
RULE_WINDOW = "review_window_passed"
RULE_APPEAL_REQUESTER = "appeal_granted_by_requester"
RULE_APPEAL_OPERATOR = "appeal_granted_by_operator"


# --------------------------------------------------------------------------
# Who may review
# --------------------------------------------------------------------------


def _reviewer_project(session: Session, user_id: int, project_id: int) -> Project:
    """The project if the user is a requester of its team: others get NotFound, or Forbidden if they may see it."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no project {project_id}")
    project = projects.visible_project(session, user, project_id)
    in_team = session.scalar(select(Membership.id).where(Membership.user_id == user_id,
                                                         Membership.team_id == project.team_id))
    if not (user.is_requester and in_team):
        raise Forbidden("only requesters of the project's team review its work")
    return project


def _reviewable(session: Session, user_id: int, assignment_id: int) -> tuple[Assignment, Project]:
    assignment = session.scalar(select(Assignment).where(Assignment.id == assignment_id).with_for_update())
    if assignment is None:
        raise NotFound(f"no assignment {assignment_id}")
    try:
        project = _reviewer_project(session, user_id, assignment.project_id)
    except NotFound:
        raise NotFound(f"no assignment {assignment_id}") from None
    if assignment.status != "submitted":
        raise Conflict(f"assignment {assignment_id} is {assignment.status}, not submitted: there is nothing to review")
    return assignment, project


def _text(value: str | None, field: str, what: str, *, limit: int = 5000) -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(f"{what}: the worker will read it", field=field)
    if len(value) > limit:
        raise Invalid(f"{field} must be at most {limit} characters", field=field)
    return value


# --------------------------------------------------------------------------
# Review
# --------------------------------------------------------------------------


def pending_reviews(user_id: int, project_id: int) -> list[dict[str, Any]]:
    """The project's submitted work waiting for a decision, oldest first, with its scores."""
    session = db.session
    project = _reviewer_project(session, user_id, project_id)
    window = dt.timedelta(seconds=project.review_window_seconds)
    rows = session.execute(
        select(Assignment, AssignmentScore)
        .outerjoin(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
        .where(Assignment.project_id == project_id, Assignment.status == "submitted",
               Assignment.decision == "pending")
        .order_by(Assignment.submitted_at, Assignment.id)).all()
    out = [{
        "assignment_id": a.id, "micro_task_id": a.micro_task_id, "annotator_id": a.annotator_id,
        "submitted_at": a.submitted_at, "approve_by": a.submitted_at + window if a.submitted_at else None,
        "active_seconds": a.active_seconds, "rule": a.decision_rule, "reason": a.decision_reason,
        "quality": score.quality if score else None, "agreement": score.agreement if score else None,
        "gold_right": score.gold_right if score else None, "gold_total": score.gold_total if score else None,
        "explanation": (score.details or {}).get("explanation") if score else None,
    } for a, score in rows]
    session.rollback()
    return out


def approve(user_id: int, assignment_id: int, reason: str = "") -> None:
    """A requester approves pending (or earlier rejected) work, which pays it."""
    reason = (reason or "").strip()
    with db.transaction() as session:
        assignment, project = _reviewable(session, user_id, assignment_id)
        if assignment.decision == "approved":
            raise Conflict(f"assignment {assignment_id} is approved already")
        was = assignment.decision
        mt = session.get(MicroTask, assignment.micro_task_id)
        if not pay.approve(session, assignment, project, mt, rule=RULE_REQUESTER,
                           reason=reason or "approved by the requester", by_id=user_id,
                           allowed_from=("pending", "rejected")):
            raise Conflict(f"assignment {assignment_id} was decided meanwhile")
        if was == "rejected":
            # Reversing one's own rejection settles any appeal against it.
            appeal_row = session.scalar(select(Appeal).where(Appeal.assignment_id == assignment_id,
                                                             Appeal.status.in_(("open", "escalated"))))
            if appeal_row is not None:
                appeal_row.status, appeal_row.decided_at, appeal_row.decided_by_id = "granted", utcnow(), user_id
                appeal_row.requester_response = reason or "the requester approved the work"
        audit.record(session, actor_id=user_id, action="approve_assignment", target_type="assignment",
                     target_id=assignment_id, reason=reason, was=was)


def reject(user_id: int, assignment_id: int, rule: str, reason: str) -> None:
    """A requester rejects pending work, naming the rule it breaks; the worker sees both and may appeal."""
    rule = _text(rule, "rule", "name the rule the rejection rests on", limit=64)
    reason = (reason or "").strip()
    with db.transaction() as session:
        assignment, _ = _reviewable(session, user_id, assignment_id)
        if assignment.decision != "pending":
            raise Conflict(f"assignment {assignment_id} is {assignment.decision}: only pending work can be rejected")
        assignment.decision, assignment.decision_rule, assignment.decision_reason = "rejected", rule, reason
        assignment.decided_at, assignment.decided_by_id = utcnow(), user_id
        audit.record(session, actor_id=user_id, action="reject_assignment", target_type="assignment",
                     target_id=assignment_id, reason=reason, rule=rule)


def approve_overdue(now: dt.datetime | None = None) -> int:
    """Approve (and pay) work left pending past its project's review window; returns how many.

    The periodic background job. One transaction per project; the guarded
    approval makes a concurrent review or a second run find nothing to do.
    """
    now = now or utcnow()
    session = db.session
    projects_due = session.execute(
        select(Project.id, Project.review_window_seconds).where(Project.id.in_(
            select(Assignment.project_id).where(Assignment.status == "submitted", Assignment.decision == "pending")
        )).order_by(Project.id)).all()
    session.rollback()
    count = 0
    for project_id, window in projects_due:
        cutoff = now - dt.timedelta(seconds=window)
        with db.transaction() as session:
            project = session.get(Project, project_id)
            due = session.scalars(select(Assignment).where(
                Assignment.project_id == project_id, Assignment.status == "submitted",
                Assignment.decision == "pending", Assignment.submitted_at <= cutoff).order_by(Assignment.id)).all()
            for assignment in due:
                mt = session.get(MicroTask, assignment.micro_task_id)
                count += pay.approve(session, assignment, project, mt, rule=RULE_WINDOW, now=now,
                                     reason=f"not reviewed within the project's review window of "
                                            f"{_duration(window)}, so approved")
    return count


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    if not rest:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{seconds // 3600} hours" if not seconds % 3600 else f"{seconds} seconds"


# --------------------------------------------------------------------------
# Appeals
# --------------------------------------------------------------------------


def appeal(annotator_id: int, assignment_id: int, reason: str, now: dt.datetime | None = None) -> int:
    """A worker appeals a rejection of their own work, within `APPEAL_DAYS` of it; returns the appeal id."""
    now = now or utcnow()
    reason = _text(reason, "reason", "say why the rejection is wrong")
    with db.transaction() as session:
        assignment = session.get(Assignment, assignment_id)
        if assignment is None or assignment.annotator_id != annotator_id:
            raise NotFound(f"no assignment {assignment_id}")
        if assignment.decision != "rejected":
            raise Conflict(f"only a rejection can be appealed; this work is {assignment.decision}")
        deadline = assignment.decided_at + dt.timedelta(days=APPEAL_DAYS)
        if now > deadline:
            raise Conflict(f"appeals are open for {APPEAL_DAYS} days after a rejection; "
                           f"this one ended {deadline:%Y-%m-%d %H:%M} UTC")
        if session.scalar(select(Appeal.id).where(Appeal.assignment_id == assignment_id)) is not None:
            raise Conflict("you appealed this rejection already")
        row = Appeal(assignment_id=assignment_id, annotator_id=annotator_id, reason=reason, created_at=now,
                     details={"rule": assignment.decision_rule, "rejected_at": assignment.decided_at.isoformat()})
        try:
            with session.begin_nested():  # a double click racing itself meets the unique assignment_id
                session.add(row)
        except IntegrityError:
            raise Conflict("you appealed this rejection already") from None
        audit.record(session, actor_id=annotator_id, action="appeal_rejection", target_type="assignment",
                     target_id=assignment_id, reason=reason)
        return row.id


def _appeal_for_update(session: Session, appeal_id: int) -> Appeal:
    row = session.scalar(select(Appeal).where(Appeal.id == appeal_id).with_for_update())
    if row is None:
        raise NotFound(f"no appeal {appeal_id}")
    return row


def _grant(session: Session, row: Appeal, actor_id: int, rule: str, response: str) -> None:
    assignment = session.get(Assignment, row.assignment_id)
    project = session.get(Project, assignment.project_id)
    mt = session.get(MicroTask, assignment.micro_task_id)
    if not pay.approve(session, assignment, project, mt, rule=rule, by_id=actor_id, allowed_from=("rejected",),
                       reason=response or "the appeal was granted"):
        raise Conflict(f"assignment {assignment.id} is no longer rejected")


def answer_appeal(user_id: int, appeal_id: int, grant: bool, response: str) -> str:
    """The requester answers an open appeal: granting approves and pays; refusing sends it to an operator.

    Returns the appeal's new status.
    """
    response = (response or "").strip()
    with db.transaction() as session:
        row = _appeal_for_update(session, appeal_id)
        assignment = session.get(Assignment, row.assignment_id)
        try:
            _reviewer_project(session, user_id, assignment.project_id)
        except NotFound:
            raise NotFound(f"no appeal {appeal_id}") from None
        if row.status != "open":
            raise Conflict(f"appeal {appeal_id} is {row.status}: the requester answers open appeals only")
        if not grant:
            response = _text(response, "response", "say why the appeal is refused")
        row.requester_response = response
        if grant:
            _grant(session, row, user_id, RULE_APPEAL_REQUESTER, response)
            row.status, row.decided_at, row.decided_by_id = "granted", utcnow(), user_id
        else:
            row.status = "escalated"
        audit.record(session, actor_id=user_id, action="answer_appeal", target_type="appeal", target_id=appeal_id,
                     reason=response, granted=bool(grant), assignment_id=row.assignment_id)
        return row.status


def decide_appeal(operator_id: int, appeal_id: int, grant: bool, response: str) -> str:
    """An operator decides an appeal the requester refused; final and audited. Returns the status."""
    response = _text(response, "response", "say why: the decision is final and the worker reads it")
    with db.transaction() as session:
        require_operator(session, operator_id)
        row = _appeal_for_update(session, appeal_id)
        if row.status == "open":
            raise Conflict(f"appeal {appeal_id} goes to the requester first")
        if row.status != "escalated":
            raise Conflict(f"appeal {appeal_id} is {row.status}: that decision is final")
        if grant:
            _grant(session, row, operator_id, RULE_APPEAL_OPERATOR, response)
        row.status = "granted" if grant else "refused"
        row.operator_response, row.decided_at, row.decided_by_id = response, utcnow(), operator_id
        audit.record(session, actor_id=operator_id, action="decide_appeal", target_type="appeal",
                     target_id=appeal_id, reason=response, granted=bool(grant), assignment_id=row.assignment_id,
                     final=True)
        return row.status


def open_appeals(user_id: int, project_id: int) -> list[dict[str, Any]]:
    """Appeals waiting for this project's requesters."""
    session = db.session
    _reviewer_project(session, user_id, project_id)
    out = _appeal_rows(session, Appeal.status == "open", Assignment.project_id == project_id)
    session.rollback()
    return out


def escalated_appeals(operator_id: int) -> list[dict[str, Any]]:
    """Appeals the requesters refused, waiting for an operator."""
    session = db.session
    require_operator(session, operator_id)
    out = _appeal_rows(session, Appeal.status == "escalated")
    session.rollback()
    return out


def _appeal_rows(session: Session, *where: Any) -> list[dict[str, Any]]:
    rows = session.execute(select(Appeal, Assignment).join(Assignment, Assignment.id == Appeal.assignment_id)
                           .where(*where).order_by(Appeal.created_at, Appeal.id)).all()
    return [{"appeal_id": ap.id, "assignment_id": a.id, "project_id": a.project_id, "annotator_id": ap.annotator_id,
             "rule": a.decision_rule, "rejection_reason": a.decision_reason, "reason": ap.reason,
             "requester_response": ap.requester_response, "status": ap.status, "created_at": ap.created_at}
            for ap, a in rows]
