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


# --------------------------------------------------------------------------
# For the review pages: requesters' queues, one assignment side by side,
# and operators' work left past the review window
# --------------------------------------------------------------------------

RULE_OPERATOR = "approved_by_operator"


def review_projects(user_id: int) -> list[dict[str, Any]]:
    """The requester's teams' projects, with the work pending review and the appeals open on each."""
    from sqlalchemy import func

    session = db.session
    user = session.get(User, user_id)
    if user is None or not user.is_requester:
        return []
    rows = session.scalars(select(Project).where(
        Project.team_id.in_(select(Membership.team_id).where(Membership.user_id == user_id)),
        Project.archived_at.is_(None)).order_by(Project.id.desc())).all()
    ids = [p.id for p in rows] or [0]
    pending = dict(session.execute(
        select(Assignment.project_id, func.count(Assignment.id))
        .where(Assignment.project_id.in_(ids), Assignment.status == "submitted", Assignment.decision == "pending")
        .group_by(Assignment.project_id)).all())
    appeals: dict[tuple[int, str], int] = {
        (project_id, status): n for project_id, status, n in session.execute(
            select(Assignment.project_id, Appeal.status, func.count(Appeal.id))
            .join(Assignment, Assignment.id == Appeal.assignment_id)
            .where(Assignment.project_id.in_(ids), Appeal.status.in_(("open", "escalated")))
            .group_by(Assignment.project_id, Appeal.status))}
    out = [{"project_id": p.id, "title": p.title, "status": p.status, "team": p.team.name,
            "pending": pending.get(p.id, 0), "open_appeals": appeals.get((p.id, "open"), 0),
            "escalated_appeals": appeals.get((p.id, "escalated"), 0),
            "review_window_seconds": p.review_window_seconds} for p in rows]
    session.rollback()
    return out


def review_detail(user_id: int, assignment_id: int) -> dict[str, Any]:
    """One submitted assignment's answers side by side with each item's consensus, gold answer and
    the other annotators' answers; for requesters of the project's team and for operators."""
    import re

    from ..models import Annotation, GoldAnswer, Item, ItemScore, MicroTaskItem
    from . import gold as gold_checks

    session = db.session
    user = session.get(User, user_id)
    assignment = session.get(Assignment, assignment_id)
    if user is None or assignment is None:
        raise NotFound(f"no assignment {assignment_id}")
    if user.is_operator:
        project = session.get(Project, assignment.project_id)
    else:
        try:
            project = _reviewer_project(session, user_id, assignment.project_id)
        except NotFound:
            raise NotFound(f"no assignment {assignment_id}") from None
    if assignment.status != "submitted":
        raise NotFound(f"assignment {assignment_id} is {assignment.status}: nothing was submitted to review")
    items = session.execute(select(MicroTaskItem.position, Item).join(Item, Item.id == MicroTaskItem.item_id)
                            .where(MicroTaskItem.micro_task_id == assignment.micro_task_id)
                            .order_by(MicroTaskItem.position)).all()
    item_ids = [item.id for _, item in items]
    mine = {a.item_id: a for a in session.scalars(select(Annotation).where(Annotation.assignment_id == assignment_id))}
    others: dict[int, list[dict[str, Any]]] = {}
    for annotation, annotator_id, other_id in session.execute(
            select(Annotation, Assignment.annotator_id, Assignment.id)
            .join(Assignment, Assignment.id == Annotation.assignment_id)
            .where(Assignment.micro_task_id == assignment.micro_task_id, Assignment.id != assignment_id,
                   Assignment.status == "submitted").order_by(Assignment.id)):
        others.setdefault(annotation.item_id, []).append(
            {"annotator_id": annotator_id, "assignment_id": other_id, "result": annotation.result})
    scores = {s.item_id: s for s in session.scalars(select(ItemScore).where(ItemScore.item_id.in_(item_ids)))}
    golds = {g.item_id: g for g in session.scalars(select(GoldAnswer).where(GoldAnswer.item_id.in_(item_ids)))}
    def third_person(why: str) -> str:  # gold checks speak to the worker; reviewers read about them
        return re.sub(r"\byou (chose|gave|wrote)\b", r"this annotator \1", why)

    rows = []
    for position, item in items:
        answer = mine.get(item.id)
        result = answer.result if answer else []
        score, gold_answer = scores.get(item.id), golds.get(item.id)
        vs_consensus = gold_checks.compare(result, score.consensus, project.iou_threshold) \
            if score is not None and score.consensus else None
        vs_gold = gold_checks.compare(result, gold_answer.result, project.iou_threshold) \
            if gold_answer is not None else None
        rows.append({
            "position": position, "item_id": item.id, "data": item.data, "is_gold": item.is_gold,
            "answer": result, "seconds": answer.seconds if answer else None,
            "consensus": score.consensus if score else None, "confidence": score.confidence if score else None,
            "agreement": score.agreement if score else None, "flagged": score.flagged if score else False,
            "matches_consensus": vs_consensus.right if vs_consensus else None,
            "consensus_why": third_person(vs_consensus.why) if vs_consensus else "",
            "gold": gold_answer.result if gold_answer else None,
            "gold_explanation": gold_answer.explanation if gold_answer else "",
            "matches_gold": vs_gold.right if vs_gold else None, "gold_why": third_person(vs_gold.why) if vs_gold else "",
            "others": others.get(item.id, []),
        })
    score = session.get(AssignmentScore, assignment_id)
    appeal_row = session.scalar(select(Appeal).where(Appeal.assignment_id == assignment_id))
    window = dt.timedelta(seconds=project.review_window_seconds)
    approve_by = assignment.submitted_at + window if assignment.submitted_at else None
    out = {
        "assignment_id": assignment.id, "micro_task_id": assignment.micro_task_id, "project_id": project.id,
        "project_title": project.title, "annotator_id": assignment.annotator_id,
        "annotator_name": session.get(User, assignment.annotator_id).name if user.is_operator else None,
        "submitted_at": assignment.submitted_at, "approve_by": approve_by,
        "overdue": bool(approve_by and assignment.decision == "pending" and approve_by <= utcnow()),
        "active_seconds": assignment.active_seconds, "decision": assignment.decision,
        "rule": assignment.decision_rule, "reason": assignment.decision_reason, "decided_at": assignment.decided_at,
        "quality": score.quality if score else None, "agreement_score": score.agreement if score else None,
        "gold_right": score.gold_right if score else None, "gold_total": score.gold_total if score else None,
        "explanation": (score.details or {}).get("explanation") if score else None,
        "appeal": None if appeal_row is None else {
            "appeal_id": appeal_row.id, "status": appeal_row.status, "reason": appeal_row.reason,
            "created_at": appeal_row.created_at, "requester_response": appeal_row.requester_response,
            "operator_response": appeal_row.operator_response, "decided_at": appeal_row.decided_at},
        "items": rows,
    }
    session.rollback()
    return out


def overdue_reviews(operator_id: int, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Work still pending past its project's review window, oldest first: the periodic
    approval has not reached it yet, or is not running."""
    now = now or utcnow()
    session = db.session
    require_operator(session, operator_id)
    out = []
    for project in session.scalars(select(Project).where(Project.id.in_(
            select(Assignment.project_id).where(Assignment.status == "submitted",
                                                Assignment.decision == "pending"))).order_by(Project.id)):
        window = dt.timedelta(seconds=project.review_window_seconds)
        for a in session.scalars(select(Assignment).where(
                Assignment.project_id == project.id, Assignment.status == "submitted",
                Assignment.decision == "pending", Assignment.submitted_at <= now - window)
                .order_by(Assignment.submitted_at, Assignment.id)):
            out.append({"assignment_id": a.id, "project_id": project.id, "project_title": project.title,
                        "annotator_id": a.annotator_id, "submitted_at": a.submitted_at,
                        "approve_by": a.submitted_at + window, "rule": a.decision_rule,
                        "reason": a.decision_reason})
    out.sort(key=lambda r: (r["approve_by"], r["assignment_id"]))
    session.rollback()
    return out


def approve_as_operator(operator_id: int, assignment_id: int, reason: str, now: dt.datetime | None = None) -> None:
    """An operator approves (and pays) work left pending past its review window, saying why; audited.

    Inside the window the decision is the requester's, so it is refused.
    """
    now = now or utcnow()
    reason = _text(reason, "reason", "say why the work is approved: the worker reads it")
    with db.transaction() as session:
        require_operator(session, operator_id)
        assignment = session.scalar(select(Assignment).where(Assignment.id == assignment_id).with_for_update())
        if assignment is None:
            raise NotFound(f"no assignment {assignment_id}")
        if assignment.status != "submitted" or assignment.decision != "pending":
            raise Conflict(f"assignment {assignment_id} is {assignment.decision or assignment.status}, "
                           f"not pending review")
        project = session.get(Project, assignment.project_id)
        due = assignment.submitted_at + dt.timedelta(seconds=project.review_window_seconds)
        if now < due:
            raise Conflict(f"assignment {assignment_id} is the requester's to review until "
                           f"{due:%Y-%m-%d %H:%M} UTC")
        mt = session.get(MicroTask, assignment.micro_task_id)
        if not pay.approve(session, assignment, project, mt, rule=RULE_OPERATOR, reason=reason, by_id=operator_id,
                           now=now):
            raise Conflict(f"assignment {assignment_id} was decided meanwhile")
        audit.record(session, actor_id=operator_id, action="approve_overdue_assignment", target_type="assignment",
                     target_id=assignment_id, reason=reason, window_ended=due.isoformat())
