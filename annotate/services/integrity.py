"""Checks of the dispatch invariants of ARCHITECTURE.md against SQL: what `python -m annotate queue check` and the tests run."""
from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from ..models import Annotation, Assignment, MicroTask


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
    session.rollback()
    return found
