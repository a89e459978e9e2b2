"""What an annotator has earned and can earn, read-only, for their dashboard
and labeling page.

- `summary`: money pending, approved and paid, in total, by project and by
  ISO week (UTC). Pending is submitted work whose decision is pending
  (count x its pay, no ledger entry yet); approved and paid come from the
  ledger: an entry is paid when its payroll run is paid, approved otherwise.
- `open_projects`: the live projects, each with its pay, estimated hourly
  rate, work left and qualification status for this annotator, ordered by fit.
- `project_for_annotator`: what the labeling page needs to show one project.

Money stays integer minor units with its currency; views format it.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from .. import labelconfig
from ..extensions import db
from ..models import (AnnotatorScore, Assignment, AssignmentScore, LedgerEntry, MicroTask, PayrollRun, Project,
                      User)
from ..scoring import pay as pay_rules
from .errors import NotFound

STATES = ("pending", "approved", "paid")
# Quality assumed where the annotator has none on a config kind: the Beta prior
# mean of annotate.scoring.quality's gold score (2 right in 4).
UNKNOWN_QUALITY = 0.5


def iso_week(moment: dt.datetime) -> str:
    """"2025-W07" for a moment, in UTC (naive datetimes are UTC here)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


# --- earnings ---------------------------------------------------------------------


@dataclass
class _Sums:
    pending: int = 0
    approved: int = 0
    paid: int = 0

    def add(self, state: str, amount: int) -> None:
        setattr(self, state, getattr(self, state) + amount)

    def as_dict(self) -> dict[str, int]:
        return {"pending": self.pending, "approved": self.approved, "paid": self.paid,
                "total": self.pending + self.approved + self.paid}


def summary(annotator_id: int) -> dict[str, Any]:
    """Pending, approved and paid money: `totals` per currency, `by_project` and
    `by_week` rows (newest week first), each with integer minor units."""
    session = db.session
    totals: dict[str, _Sums] = defaultdict(_Sums)
    by_project: dict[tuple[int | None, str], _Sums] = defaultdict(_Sums)
    by_week: dict[tuple[str, str], _Sums] = defaultdict(_Sums)
    counts: dict[tuple[int | None, str], int] = defaultdict(int)

    pending = session.execute(
        select(Assignment.project_id, Assignment.submitted_at, MicroTask.is_qualification,
               Project.pay_per_micro_task, Project.qualification_pay, Project.currency)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .join(Project, Project.id == Assignment.project_id)
        .where(Assignment.annotator_id == annotator_id, Assignment.status == "submitted",
               Assignment.decision == "pending"))
    for project_id, submitted_at, is_qualification, pay, qualification_pay, currency in pending:
        amount = qualification_pay if is_qualification else pay
        for key, sums in (((project_id, currency), by_project), ((iso_week(submitted_at), currency), by_week)):
            sums[key].add("pending", amount)
        totals[currency].add("pending", amount)
        counts[(project_id, "pending")] += 1

    entries = session.execute(
        select(LedgerEntry.project_id, LedgerEntry.amount, LedgerEntry.currency, LedgerEntry.created_at,
               PayrollRun.status)
        .outerjoin(PayrollRun, PayrollRun.id == LedgerEntry.payroll_run_id)
        .where(LedgerEntry.annotator_id == annotator_id))
    for project_id, amount, currency, created_at, run_status in entries:
        state = "paid" if run_status == "paid" else "approved"
        by_project[(project_id, currency)].add(state, amount)
        by_week[(iso_week(created_at), currency)].add(state, amount)
        totals[currency].add(state, amount)

    titles = dict(session.execute(select(Project.id, Project.title).where(
        Project.id.in_({p for p, _ in by_project if p is not None}))).all())
    session.rollback()
    return {
        "totals": [{"currency": c, **s.as_dict()} for c, s in sorted(totals.items())],
        "by_project": [{"project_id": p, "title": titles.get(p, "no project"), "currency": c,
                        "pending_count": counts[(p, "pending")], **s.as_dict()}
                       for (p, c), s in sorted(by_project.items(), key=lambda kv: (titles.get(kv[0][0], ""), kv[0]))],
        "by_week": [{"week": w, "currency": c, **s.as_dict()}
                    for (w, c), s in sorted(by_week.items(), key=lambda kv: kv[0], reverse=True)],
    }


# --- open projects ----------------------------------------------------------------


def _qualification_status(session, annotator_id: int, project_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per project requiring it: to_take, in_progress, passed or failed, with the rule when scored."""
    rows = session.execute(
        select(Assignment.project_id, Assignment.status, AssignmentScore.gold_right, AssignmentScore.gold_total,
               AssignmentScore.details)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .outerjoin(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
        .where(Assignment.annotator_id == annotator_id, Assignment.project_id.in_(project_ids),
               MicroTask.is_qualification.is_(True)))
    out: dict[int, dict[str, Any]] = {}
    for project_id, status, right, total, details in rows:
        q = (details or {}).get("qualification")
        if q is not None:
            out[project_id] = {"status": "passed" if q["passed"] else "failed", "rule": q["rule"],
                               "right": right, "total": total}
        elif status == "leased":
            out[project_id] = {"status": "in_progress"}
        # skipped, expired or released: the test can be taken again
    return out


def _similar_quality(session, annotator_id: int) -> dict[str, float]:
    """The annotator's quality per config kind, weighted by the items behind each project's score."""
    rows = session.execute(
        select(Project.config_kind, AnnotatorScore.quality, AnnotatorScore.n_items)
        .join(Project, Project.id == AnnotatorScore.project_id)
        .where(AnnotatorScore.annotator_id == annotator_id))
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for kind, quality, n_items in rows:
        weight = max(n_items, 1)
        sums[kind][0] += quality * weight
        sums[kind][1] += weight
    return {kind: total / weight for kind, (total, weight) in sums.items()}


def _rates(session, annotator_id: int, projects: list[Project]) -> dict[int, dict[str, Any]]:
    """Estimated hourly rate per project: from the annotator's median active
    time on its submitted (non-qualification) work, else the requester's estimate."""
    seconds: dict[int, list[float]] = defaultdict(list)
    for project_id, active in session.execute(
            select(Assignment.project_id, Assignment.active_seconds)
            .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
            .where(Assignment.annotator_id == annotator_id, Assignment.status == "submitted",
                   Assignment.project_id.in_([p.id for p in projects]), MicroTask.is_qualification.is_(False))):
        if active > 0:
            seconds[project_id].append(active)
    out = {}
    for p in projects:
        if seconds[p.id]:
            median = max(1, pay_rules.median_seconds(seconds[p.id]))
            out[p.id] = {"rate": pay_rules.hourly_rate(p.pay_per_micro_task, median), "seconds": median,
                         "basis": "yours", "n": len(seconds[p.id])}
        elif p.estimated_seconds_per_micro_task:
            out[p.id] = {"rate": pay_rules.hourly_rate(p.pay_per_micro_task, p.estimated_seconds_per_micro_task),
                         "seconds": p.estimated_seconds_per_micro_task, "basis": "estimate", "n": 0}
        else:
            out[p.id] = {"rate": None, "seconds": None, "basis": None, "n": 0}
    return out


def open_projects(annotator_id: int) -> dict[str, list[dict[str, Any]]]:
    """Live projects for this annotator, ordered by fit: ready to work (no
    qualification needed, or passed) first, then qualifications to take; within
    each, their quality on projects of the same config kind, then pay per hour.

    Returns `open` (projects with work left for them) and `closed` (a failed
    qualification: the queue gives them nothing there).
    """
    session = db.session
    projects = list(session.scalars(select(Project).where(Project.status == "live", Project.archived_at.is_(None))))
    if not projects:
        session.rollback()
        return {"open": [], "closed": []}
    ids = [p.id for p in projects]
    had = select(Assignment.micro_task_id).where(Assignment.annotator_id == annotator_id)
    left = dict(session.execute(
        select(MicroTask.project_id, func.count(MicroTask.id))
        .where(MicroTask.project_id.in_(ids), MicroTask.status == "open", MicroTask.is_qualification.is_(False),
               MicroTask.taken < MicroTask.overlap, MicroTask.id.not_in(had))
        .group_by(MicroTask.project_id)).all())
    qualification = _qualification_status(session, annotator_id, ids)
    similar = _similar_quality(session, annotator_id)
    rates = _rates(session, annotator_id, projects)
    session.rollback()

    opened, closed = [], []
    for p in projects:
        if p.requires_qualification:
            q = qualification.get(p.id, {"status": "to_take"})
        else:
            q = {"status": "not_needed"}
        row = {
            "project_id": p.id, "title": p.title, "description": p.description, "config_kind": p.config_kind,
            "pay": p.pay_per_micro_task, "qualification_pay": p.qualification_pay, "currency": p.currency,
            "items_per_micro_task": p.items_per_micro_task, "work_left": int(left.get(p.id, 0)),
            "qualification": q, "similar_quality": similar.get(p.config_kind), **{
                f"rate_{k}": v for k, v in rates[p.id].items()},
        }
        if q["status"] == "failed":
            closed.append(row)
        elif row["work_left"] > 0:
            opened.append(row)

    def fit(row: dict[str, Any]) -> tuple:
        ready = row["qualification"]["status"] in ("not_needed", "passed")
        quality = row["similar_quality"] if row["similar_quality"] is not None else UNKNOWN_QUALITY
        return (not ready, -quality, -(row["rate_rate"] or 0), row["project_id"])

    opened.sort(key=fit)
    return {"open": opened, "closed": closed}


def project_for_annotator(annotator_id: int, project_id: int) -> dict[str, Any]:
    """The label config, instructions and pay of a project the annotator may
    label: a live one, or one they hold or held work on. Others are NotFound."""
    session = db.session
    project = session.get(Project, project_id)
    user = session.get(User, annotator_id)
    worked = project is not None and session.scalar(select(Assignment.id).where(
        Assignment.project_id == project_id, Assignment.annotator_id == annotator_id).limit(1)) is not None
    if project is None or user is None or not (worked or (project.status == "live" and project.archived_at is None)):
        session.rollback()
        raise NotFound(f"no project {project_id}")
    config = labelconfig.parse_config(project.label_config)
    out = {
        "id": project.id, "title": project.title, "label_config": project.label_config,
        "instructions": project.instructions, "config_kind": config.kind, "pay": project.pay_per_micro_task,
        "qualification_pay": project.qualification_pay, "currency": project.currency,
        "items_per_micro_task": project.items_per_micro_task, "lease_seconds": project.lease_seconds,
        "hotkeys": [{"key": key, "control": control, "label": label}
                    for key, (control, label) in config.hotkeys.items()],
        "qualification_min_accuracy": project.qualification_min_accuracy,
    }
    session.rollback()
    return out
