"""Reading items (Label Studio's "tasks") with their predictions and annotations."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ..extensions import db
from ..models import Annotation, Assignment, GoldAnswer, Item, Prediction, User
from . import projects
from .errors import Invalid, NotFound

MAX_PAGE_SIZE = 1000


@dataclass
class Page:
    tasks: list[dict[str, Any]]
    total: int
    total_annotations: int
    total_predictions: int


def _task_dicts(session, items: list[Item]) -> list[dict[str, Any]]:
    ids = [item.id for item in items]
    predictions: dict[int, list] = defaultdict(list)
    annotations: dict[int, list] = defaultdict(list)
    gold: dict[int, GoldAnswer] = {}
    if ids:
        for p in session.scalars(select(Prediction).where(Prediction.item_id.in_(ids)).order_by(Prediction.id)):
            predictions[p.item_id].append({"id": p.id, "result": p.result, "score": p.score,
                                           "model_version": p.model_version, "created_at": p.created_at.isoformat()})
        rows = session.execute(
            select(Annotation, Assignment.annotator_id).join(Assignment, Assignment.id == Annotation.assignment_id)
            .where(Annotation.item_id.in_(ids), Assignment.status == "submitted").order_by(Annotation.id))
        for annotation, annotator_id in rows:
            annotations[annotation.item_id].append({
                "id": annotation.id, "result": annotation.result, "completed_by": annotator_id,
                "lead_time": annotation.seconds, "created_at": annotation.created_at.isoformat(),
                "was_cancelled": False})
        gold = {g.item_id: g for g in session.scalars(select(GoldAnswer).where(GoldAnswer.item_id.in_(ids)))}
    tasks = []
    for item in items:
        task_annotations = list(item.imported_annotations or []) + annotations[item.id]
        task = {"id": item.id, "project": item.project_id, "data": item.data, "is_gold": item.is_gold,
                "predictions": predictions[item.id], "annotations": task_annotations,
                "total_annotations": len(task_annotations), "total_predictions": len(predictions[item.id]),
                "created_at": item.created_at.isoformat()}
        if item.id in gold:
            task["gold_answer"] = {"result": gold[item.id].result, "explanation": gold[item.id].explanation}
        tasks.append(task)
    return tasks


def list_tasks(user_id: int, project_id: int, page: int, page_size: int) -> Page:
    """One page of a project's items, oldest first. A page past the end is
    NotFound("Invalid page."), as label-studio-sdk expects to stop paging."""
    if page < 1:
        raise Invalid("page must be 1 or more", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise Invalid(f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size")
    session = db.session
    projects.visible_project(session, session.get(User, user_id), project_id)
    total = session.scalar(select(func.count(Item.id)).where(Item.project_id == project_id))
    if page > 1 and (page - 1) * page_size >= total:
        raise NotFound("Invalid page.")
    items = list(session.scalars(select(Item).where(Item.project_id == project_id).order_by(Item.id)
                                 .offset((page - 1) * page_size).limit(page_size)))
    total_predictions = session.scalar(
        select(func.count(Prediction.id)).join(Item, Item.id == Prediction.item_id).where(Item.project_id == project_id))
    total_annotations = session.scalar(
        select(func.count(Assignment.id)).where(Assignment.project_id == project_id, Assignment.status == "submitted"))
    return Page(_task_dicts(session, items), total, total_annotations or 0, total_predictions or 0)


def get_task(user_id: int, item_id: int) -> dict[str, Any]:
    session = db.session
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no task {item_id}")
    try:
        projects.visible_project(session, session.get(User, user_id), item.project_id)
    except NotFound:
        raise NotFound(f"no task {item_id}") from None
    return _task_dicts(session, [item])[0]
