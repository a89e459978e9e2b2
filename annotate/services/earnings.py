"""What an annotator has earned and can earn, read-only, for their dashboard
and labeling page.

- `summary`: money pending, approved and paid, in total, by project and by
  ISO week (UTC). Pending is submitted work whose decision is pending
  (count x its pay, no ledger entry yet); approved and paid come from the
  ledger: an entry is paid when its payroll run is paid, approved otherwise.
- `open_projects`: the live projects open to this annotator in the order
  matching hands out work, each with why (skills and levels, estimated
  hourly rate for them, work left), and those closed to them with the rule.
- `project_for_annotator`: what the labeling page needs to show one project.

Money stays integer minor units with its currency; views format it.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from .. import labelconfig
from ..extensions import db
from ..models import (Assignment, AssignmentScore, LedgerEntry, MicroTask, PayrollRun, Profile, Project,
                      ProjectSkill, Skill, SkillLevel, User)
from ..scoring import matching
from . import qualifications, work
from .errors import NotFound

STATES = ("pending", "approved", "paid")


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
    """Per project requiring it: to_take (`retake` after an unfinished attempt), cooling (until
    `again`), in_progress, passed or failed, with the rule when scored."""
    rows = session.execute(
        select(Assignment.project_id, Assignment.status, AssignmentScore.gold_right, AssignmentScore.gold_total,
               AssignmentScore.details, Assignment.ended_at)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .outerjoin(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
        .where(Assignment.annotator_id == annotator_id, Assignment.project_id.in_(project_ids),
               MicroTask.is_qualification.is_(True)))
    out: dict[int, dict[str, Any]] = {}
    unfinished: dict[int, dt.datetime] = {}
    for project_id, status, right, total, details, ended_at in rows:
        q = (details or {}).get("qualification")
        if q is not None:
            out[project_id] = {"status": "passed" if q["passed"] else "failed", "rule": q["rule"],
                               "right": right, "total": total}
        elif status == "leased":
            out[project_id] = {"status": "in_progress"}
        elif ended_at is not None:  # skipped, expired or released: taken again after a cooling-off
            unfinished[project_id] = max(unfinished.get(project_id, ended_at), ended_at)
    now = dt.datetime.now(dt.UTC)
    for project_id, ended_at in unfinished.items():
        if project_id not in out:
            again = ended_at + qualifications.cooling_off()
            out[project_id] = {"status": "to_take", "retake": True} if again <= now else {
                "status": "cooling", "again": again}
    return out


def _skill_view(session, annotator_id: int, projects: list[Project]):
    """The annotator's levels, the skills' names, each project's minimums and the platform's skill per kind."""
    levels = dict(session.execute(select(SkillLevel.skill_id, SkillLevel.level)
                                  .where(SkillLevel.annotator_id == annotator_id)).all())
    minimums: dict[int, dict[int, int]] = defaultdict(dict)
    for project_id, skill_id, minimum in session.execute(
            select(ProjectSkill.project_id, ProjectSkill.skill_id, ProjectSkill.min_level)
            .where(ProjectSkill.project_id.in_([p.id for p in projects]))):
        minimums[project_id][skill_id] = minimum
    names = dict(session.execute(select(Skill.id, Skill.name)).all())
    return levels, minimums, names, work.kind_skills()


def _took(session, annotator_id: int, project_ids: list[int]) -> dict[int, int]:
    """Regular micro-tasks the annotator holds or submitted, per project (what the share cap counts)."""
    return dict(session.execute(
        select(Assignment.project_id, func.count(Assignment.id)).join(MicroTask)
        .where(Assignment.annotator_id == annotator_id, Assignment.project_id.in_(project_ids),
               MicroTask.is_qualification.is_(False), Assignment.status.in_(("leased", "submitted")))
        .group_by(Assignment.project_id)).all())


def open_projects(annotator_id: int) -> dict[str, list[dict[str, Any]]]:
    """Live projects for this annotator, in the order `POST /api/work/next` without a project
    hands out work (`annotate.scoring.matching.order_key`: priority, ready before a
    qualification test, due within the deadline window (DEADLINE_WINDOW_SECONDS), expected
    hourly rate at their pace in the ranking currency, skill margin), each with why: the
    skills it uses and their level in each, the rate and where it comes from, the deadline,
    the work left.

    Returns `open` (projects with work left for them) and `closed` (each with the rules
    that close it to them and how to qualify).
    """
    session = db.session
    projects = list(session.scalars(select(Project).where(Project.status == "live", Project.archived_at.is_(None))))
    if not projects:
        session.rollback()
        return {"open": [], "closed": []}
    ids = [p.id for p in projects]
    user = session.get(User, annotator_id)
    profile = session.get(Profile, annotator_id)
    languages = work.declared_languages(profile)
    opted_out = list(profile.opted_out_categories or ()) if profile is not None else []
    had = select(Assignment.micro_task_id).where(Assignment.annotator_id == annotator_id)
    left = dict(session.execute(
        select(MicroTask.project_id, func.count(MicroTask.id))
        .where(MicroTask.project_id.in_(ids), MicroTask.status == "open", MicroTask.is_qualification.is_(False),
               MicroTask.taken < MicroTask.overlap, MicroTask.id.not_in(had))
        .group_by(MicroTask.project_id)).all())
    qualification = _qualification_status(session, annotator_id, ids)
    levels, minimums, names, kind_skills = _skill_view(session, annotator_id, projects)
    refs = work.references(projects)
    paces = work.speeds([annotator_id]).get(annotator_id, {})
    took = _took(session, annotator_id, ids)
    caps = {p.id: work.share_cap(p) for p in projects}
    ranking = {p.id: work.ranking_rate(p, refs[p.id]) for p in projects}
    session.rollback()
    now = dt.datetime.now(dt.UTC)
    window = current_app.config["DEADLINE_WINDOW_SECONDS"]

    opened, closed = [], []
    for p in projects:
        q = qualification.get(p.id, {"status": "to_take"}) if p.requires_qualification else {"status": "not_needed"}
        ref = refs[p.id]
        pace, n_yours = paces.get(p.config_kind, (matching.BP, 0))
        kind_skill = kind_skills.get(p.config_kind, 0)
        used = dict(minimums.get(p.id, {}))
        if kind_skill and kind_skill not in used:
            used[kind_skill] = 0
        row = {
            "project_id": p.id, "title": p.title, "description": p.description, "config_kind": p.config_kind,
            "pay": p.pay_per_micro_task, "qualification_pay": p.qualification_pay, "currency": p.currency,
            "items_per_micro_task": p.items_per_micro_task, "work_left": int(left.get(p.id, 0)),
            "qualification": q, "priority": p.priority,
            "rate": matching.expected_rate(matching.project_rate(p.pay_per_micro_task, ref), pace) if ref.seconds
            else None,
            "rate_seconds": matching.expected_seconds(ref.seconds, pace),
            "rate_basis": ("yours" if n_yours else ref.basis) if ref.seconds else None,
            "rate_n": n_yours or ref.n, "pace": pace,
            "skills": [{"skill_id": s, "name": names.get(s, f"skill {s}"), "level": levels.get(s, 0),
                        "min_level": m, "platform": s == kind_skill}
                       for s, m in sorted(used.items(), key=lambda sm: (names.get(sm[0], ""), sm[0]))],
            "margin": matching.margin(minimums.get(p.id, {}), levels, kind_skill),
            # Matching compares rates in one currency; pay and the rate shown stay in the project's.
            "ranking_rate": matching.expected_rate(ranking[p.id], pace) if ref.seconds else None,
            "deadline": p.deadline, "due": matching.due(p.deadline, now, window),
        }
        failed = q["status"] == "failed"
        # A qualification to take skips skill minimums and the cap: passing it is how the skill is granted.
        test_first = q["status"] in ("to_take", "in_progress")
        row["closed_by"] = matching.closed_by(
            blocked=user is not None and user.blocked_at is not None,
            blocked_reason=user.blocked_reason if user is not None else None,
            categories=p.content_categories or (), opted_out=opted_out,
            required_languages=p.required_languages or (), languages=languages,
            minimums={} if test_first else minimums.get(p.id, {}), levels=levels, skill_names=names,
            cap=0 if test_first else caps[p.id], took=took.get(p.id, 0),
            qualification_failed=(f"{q['right']} of {q['total']} right, needed {q['rule']}" if failed else None),
            qualification_again=q.get("again"))
        row["needs_test"] = test_first
        if row["closed_by"]:
            closed.append(row)
        elif row["work_left"] > 0:
            opened.append(row)

    opened.sort(key=lambda r: matching.order_key(r["priority"], r["needs_test"], r["ranking_rate"] or 0,
                                                 r["margin"], r["project_id"], r["due"]))
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
