"""Checks of the dispatch invariants of ARCHITECTURE.md against SQL: what `python -m annotate queue check` and the tests run."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import func, select

from ..extensions import db
from ..models import Annotation, Assignment, Item, MicroTask, MicroTaskItem


def violations(project_id: int | None = None) -> list[str]:
    session = db.session
    found = []
    stmt = select(MicroTask)
    if project_id is not None:
        stmt = stmt.where(MicroTask.project_id == project_id)
    counts = {
        (mt_id, status): n for mt_id, status, n in session.execute(
            select(Assignment.micro_task_id, Assignment.status, func.count()).group_by(
                Assignment.micro_task_id, Assignment.status))
    }
    for mt in session.scalars(stmt):
        live = counts.get((mt.id, "leased"), 0)
        submitted = counts.get((mt.id, "submitted"), 0)
        if live + submitted > mt.overlap:
            found.append(f"micro-task {mt.id}: {live} live + {submitted} submitted > overlap {mt.overlap}")
        if live + submitted != mt.taken or submitted != mt.submitted:
            found.append(f"micro-task {mt.id}: counters taken={mt.taken} submitted={mt.submitted} "
                         f"but rows say {live + submitted} and {submitted}")
        if mt.status == "done" and submitted != mt.overlap:
            found.append(f"micro-task {mt.id}: done with {submitted} submitted, not {mt.overlap}")
    for mt_id, annotator_id, n in session.execute(
            select(Assignment.micro_task_id, Assignment.annotator_id, func.count()).group_by(
                Assignment.micro_task_id, Assignment.annotator_id).having(func.count() > 1)):
        found.append(f"annotator {annotator_id} has {n} assignments of micro-task {mt_id}")
    for annotator_id, p_id, n in session.execute(
            select(Assignment.annotator_id, Assignment.project_id, func.count()).where(
                Assignment.status == "leased").group_by(Assignment.annotator_id, Assignment.project_id)
            .having(func.count() > 1)):
        found.append(f"annotator {annotator_id} holds {n} live leases in project {p_id}")
    for assignment_id, n in session.execute(
            select(Annotation.assignment_id, func.count(func.distinct(Annotation.item_id)) - func.count())
            .group_by(Annotation.assignment_id)):
        if n:
            found.append(f"assignment {assignment_id} stored an item twice")
    found += _item_violations(session, project_id)
    session.rollback()
    return found


def _item_violations(session, project_id: int | None) -> list[str]:
    """Items stay where annotators saw them: re-forming the queue (uncertainty order)
    moves items only between micro-tasks nobody was given."""
    found = []
    scope = (lambda stmt, column: stmt.where(column == project_id)) if project_id is not None else (lambda s, c: s)
    regular = (select(MicroTaskItem.item_id, func.count()).join(MicroTask, MicroTask.id == MicroTaskItem.micro_task_id)
               .join(Item, Item.id == MicroTaskItem.item_id)
               .where(MicroTask.is_qualification.is_(False), Item.is_gold.is_(False))
               .group_by(MicroTaskItem.item_id).having(func.count() > 1))
    for item_id, n in session.execute(scope(regular, MicroTask.project_id)):
        found.append(f"item {item_id} is in {n} regular micro-tasks")
    strays = (select(Annotation.id, Annotation.item_id, Assignment.micro_task_id)
              .join(Assignment, Assignment.id == Annotation.assignment_id)
              .where(~sa.exists().where(MicroTaskItem.micro_task_id == Assignment.micro_task_id,
                                        MicroTaskItem.item_id == Annotation.item_id)))
    for annotation_id, item_id, mt_id in session.execute(scope(strays, Assignment.project_id)):
        found.append(f"annotation {annotation_id}: item {item_id} is no longer in micro-task {mt_id}")
    twice = (select(Assignment.annotator_id, Annotation.item_id, func.count())
             .join(Assignment, Assignment.id == Annotation.assignment_id)
             .join(Item, Item.id == Annotation.item_id).where(Item.is_gold.is_(False))
             .group_by(Assignment.annotator_id, Annotation.item_id).having(func.count() > 1))
    for annotator_id, item_id, n in session.execute(scope(twice, Assignment.project_id)):
        found.append(f"annotator {annotator_id} answered item {item_id} {n} times")
    prefilled_gold = (select(Annotation.id).join(Item, Item.id == Annotation.item_id)
                      .join(Assignment, Assignment.id == Annotation.assignment_id)
                      .where(Item.is_gold.is_(True), Annotation.had_prediction.is_(True)))
    for (annotation_id,) in session.execute(scope(prefilled_gold, Assignment.project_id)):
        found.append(f"annotation {annotation_id}: a gold item was shown with a prediction")
    return found
