"""Qualification attempts: who passed, who submitted, and retakes.

A project's qualification test is a micro-task everyone may take once. The
rule an annotator expects:

- submitted (passed or failed): never again; a failed test keeps the project
  closed to them (projects have no rule for retaking a failed test);
- skipped, expired or released before a submit: it may be taken again after a
  cooling-off (the operators' QUALIFICATION_RETAKE_AFTER_SECONDS), on a
  qualification micro-task they never had, so "never the same annotator twice
  on a micro-task" still holds. When they have had every one, `fresh_micro_task`
  makes another (shared with the next who needs one), with the next gold items
  of the project where it has more than the test needs.

Dispatch checks this in its script (`tried`, `again`: when the last
unsubmitted attempt ended, and `quals` of the project); the SQL write of a
lease refuses a qualification micro-task to one who has a live or submitted
one (`already_tried`), and a late submit of a test that ran out is refused
once they took it again.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import func, select

from tasks.dispatch import Dispatch, MicroTaskState

from ..extensions import Direct, db
from ..models import Assignment, AssignmentScore, Item, MicroTask, MicroTaskItem, Project, utcnow
from ..prepared import Prepared
from .errors import Conflict


@dataclass(frozen=True)
class Attempts:
    """A project's qualification attempts, as dispatch needs them."""

    passed: tuple[int, ...] = ()
    tried: tuple[int, ...] = ()  # submitted one, pass or fail
    ended: tuple[tuple[int, float], ...] = ()  # (annotator, epoch their last unsubmitted attempt ended)


def cooling_off() -> dt.timedelta:
    """How long after an unsubmitted attempt the test may be taken again (operators' setting)."""
    return dt.timedelta(seconds=current_app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"])


def _passes(project: Project, right: int | None, total: int | None) -> bool:
    from .work import _passes as rule  # one rule for the submit and for dispatch

    return rule(project, right or 0, total or 0)


def _rows(session, project_id: int, annotator_id: int | None = None):
    stmt = (select(Assignment.annotator_id, Assignment.micro_task_id, Assignment.status, Assignment.ended_at,
                   AssignmentScore.gold_right, AssignmentScore.gold_total)
            .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
            .outerjoin(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
            .where(Assignment.project_id == project_id, MicroTask.is_qualification.is_(True)))
    if annotator_id is not None:
        stmt = stmt.where(Assignment.annotator_id == annotator_id)
    return session.execute(stmt).all()


def _summarise(project: Project, rows) -> Attempts:
    passed, tried, ended, live = set(), set(), {}, set()
    for annotator, _mt, status, ended_at, right, total in rows:
        if status == "submitted":
            tried.add(annotator)
            if _passes(project, right, total):
                passed.add(annotator)
        elif status == "leased":
            live.add(annotator)
        elif ended_at is not None:
            ended[annotator] = max(ended.get(annotator, ended_at), ended_at)
    unsubmitted = tuple(sorted((a, at.timestamp()) for a, at in ended.items() if a not in tried and a not in live))
    return Attempts(tuple(sorted(passed)), tuple(sorted(tried)), unsubmitted)


def attempts(session, project: Project) -> Attempts:
    """Everyone's attempts at the project's qualification tests (for a rebuild or a settings change)."""
    if not project.requires_qualification:
        return Attempts()
    return _summarise(project, _rows(session, project.id))


def already_tried(direct: Direct, project_id: int, annotator_id: int) -> bool:
    """The SQL guard of a qualification lease: no second test while one is live or submitted."""
    return direct.execute(_TRIED, {"project": project_id, "annotator": annotator_id}).fetchone() is not None


_TRIED = Prepared(select(Assignment.id).join(MicroTask, MicroTask.id == Assignment.micro_task_id)
                  .where(Assignment.project_id == sa.bindparam("project"),
                         Assignment.annotator_id == sa.bindparam("annotator"),
                         MicroTask.is_qualification.is_(True),
                         sa.or_(Assignment.status == "leased", Assignment.status == "submitted"))
                  .limit(1))


def refuse_late_submit_after_retake(session, micro_task_id: int, annotator_id: int, project_id: int) -> None:
    """A late submit of a test whose lease ran out is refused once the annotator took the test
    again: one attempt counts, never two."""
    if session.get(MicroTask, micro_task_id).is_qualification and already_tried(
            db.direct(), project_id, annotator_id):
        raise Conflict("your lease on this qualification test ran out and you have taken the test again "
                       "since: only that attempt counts")


def fresh_micro_task(dispatch: Dispatch, annotator_id: int, project_id: int,
                     now: dt.datetime | None = None) -> int | None:
    """Dispatch found no qualification micro-task this annotator may retake on: make one if
    SQL agrees they may retake now, and tell dispatch what SQL says of their attempts either
    way. Returns the new micro-task's id, or None."""
    now = now or utcnow()
    created: MicroTaskState | None = None
    with db.transaction() as session:
        # The project's row lock: two annotators asking at once make one micro-task, not two.
        project = session.scalar(select(Project).where(Project.id == project_id).with_for_update())
        if project is None or not project.requires_qualification:
            return None
        mine = _summarise(project, _rows(session, project_id, annotator_id))
        tried = annotator_id in mine.tried
        ended = dict(mine.ended).get(annotator_id)
        quals = dict(session.execute(select(MicroTask.id, MicroTask.seq).where(
            MicroTask.project_id == project_id, MicroTask.is_qualification.is_(True))).all())
        had = {mt for _a, mt, *_rest in _rows(session, project_id, annotator_id)}
        may_retake = not tried and ended is not None and ended + cooling_off().total_seconds() <= now.timestamp()
        if may_retake and quals and set(quals) <= had:
            created = _make(session, project, len(quals))
    if created is not None:
        dispatch.add_micro_tasks([created])
    dispatch.set_retake(project_id, annotator_id, tried=tried, ended=ended)
    db.session.rollback()
    return created.id if created is not None else None


def _make(session, project: Project, made: int) -> MicroTaskState:
    """One more qualification micro-task: the next window of the project's gold items."""
    from .work import QUALIFICATION_OVERLAP

    gold = list(session.scalars(select(Item.id).where(Item.project_id == project.id, Item.is_gold.is_(True))
                                .order_by(Item.id)))
    size = min(project.qualification_gold_count, len(gold))
    start = (made * size) % len(gold)
    items = [gold[(start + i) % len(gold)] for i in range(size)]
    seq = 1 + session.scalar(select(func.coalesce(func.max(MicroTask.seq), 0))
                             .where(MicroTask.project_id == project.id))
    mt = MicroTask(project_id=project.id, seq=seq, is_qualification=True, overlap=QUALIFICATION_OVERLAP,
                   status="open", taken=0, submitted=0)
    session.add(mt)
    session.flush()
    session.execute(sa.insert(MicroTaskItem), [{"micro_task_id": mt.id, "position": position, "item_id": item_id}
                                                for position, item_id in enumerate(items)])
    return MicroTaskState(mt.id, project.id, seq, QUALIFICATION_OVERLAP, True, ())
