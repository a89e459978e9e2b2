"""Label Studio ML backends: the operators' allow-list and the calls a project makes.

A backend is only ever called at a URL an operator allowed, and only from
background jobs: a backend that is slow or down never holds up an annotator.
Its failure is kept on the project (`assist_error`), so the workbench can say
that pre-annotations are unavailable, and cleared by the next call that works.
"""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import select

from ..assist import mlbackend
from ..extensions import db
from ..labelconfig import ResultError, parse_config, validate_result
from ..models import AssistModel, Item, ItemScore, MicroTaskItem, MLBackend, Project, User, utcnow
from . import audit
from .assist import MIN_ANSWERS_FOR_TRAINING, open_items, store_predictions
from .errors import Conflict, Forbidden, Invalid, NotFound

log = logging.getLogger(__name__)

PREDICT_BATCH = 50      # tasks per /predict call
PREDICT_PER_RUN = 5000  # items per job run; the schedule comes back for the rest


# --- the allow-list (operators) -----------------------------------------------------


def _operator(session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_operator:
        raise Forbidden("only operators manage the ML backend list")
    return user


def list_backends() -> list[MLBackend]:
    backends = list(db.session.scalars(select(MLBackend).order_by(MLBackend.name)))
    db.session.rollback()
    return backends


def add_backend(user_id: int, name: str, url: str) -> int:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("name: give the backend a name of 1 to 120 characters", field="name")
    try:
        url = mlbackend.normalise_url(url or "")
    except ValueError as why:
        raise Invalid(f"url: {why}", field="url") from None
    with db.transaction() as session:
        _operator(session, user_id)
        if session.scalar(select(MLBackend.id).where(MLBackend.url == url)) is not None:
            raise Conflict(f"url: {url} is already on the list", field="url")
        backend = MLBackend(name=name, url=url, added_by_id=user_id)
        session.add(backend)
        session.flush()
        audit.record(session, actor_id=user_id, action="add_ml_backend", target_type="ml_backend",
                     target_id=backend.id, url=url)
        return backend.id


def remove_backend(user_id: int, backend_id: int) -> None:
    with db.transaction() as session:
        _operator(session, user_id)
        backend = session.get(MLBackend, backend_id)
        if backend is None:
            raise NotFound(f"no ML backend {backend_id}")
        users = session.scalar(select(sa.func.count()).select_from(Project).where(
            Project.assist == "backend", Project.ml_backend_url == backend.url, Project.archived_at.is_(None)))
        if users:
            raise Conflict(f"{users} project(s) use {backend.url}; switch their assist off first")
        audit.record(session, actor_id=user_id, action="remove_ml_backend", target_type="ml_backend",
                     target_id=backend_id, url=backend.url)
        session.delete(backend)


def check_backend(user_id: int, backend_id: int) -> dict[str, Any]:
    """GET /health now; the result is kept on the list."""
    with db.transaction() as session:
        _operator(session, user_id)
        backend = session.get(MLBackend, backend_id)
        if backend is None:
            raise NotFound(f"no ML backend {backend_id}")
        url = backend.url
    try:
        answer, error = _client(url).health(), None
    except mlbackend.BackendError as why:
        answer, error = None, str(why)
    with db.transaction() as session:
        backend = session.get(MLBackend, backend_id)
        backend.checked_at = utcnow()
        backend.last_error = error
        if error is None:
            backend.last_ok_at = backend.checked_at
    return {"ok": error is None, "answer": answer, "error": error}


def _client(url: str) -> mlbackend.Client:
    return mlbackend.Client(url, timeout=current_app.config["ML_BACKEND_TIMEOUT"])


# --- a project's backend --------------------------------------------------------------


def _project_ref(project: Project) -> str:
    # Label Studio names a project to its backends as "<id>.<created_at timestamp>".
    return f"{project.id}.{int(project.created_at.timestamp())}"


def _backend_of(session, project_id: int) -> tuple[Project, str]:
    """The project and its backend URL, refused unless the URL is still on the allow-list."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    if project.assist != "backend" or not project.ml_backend_url:
        raise Conflict("the project does not use an ML backend")
    if not mlbackend.is_allowed(project.ml_backend_url, session.scalars(select(MLBackend.url))):
        raise Forbidden(f"{project.ml_backend_url} is no longer on the operators' list of ML backends")
    return project, project.ml_backend_url


def _note_failure(project_id: int, error: str | None) -> None:
    with db.transaction() as session:
        project = session.get(Project, project_id)
        if project is not None and project.assist_error != error:
            project.assist_error = error


def _model_row(project_id: int, url: str, model_version: str) -> int:
    """The AssistModel row standing for this backend model version (made on first sight)."""
    with db.transaction() as session:
        rows = session.scalars(select(AssistModel).where(AssistModel.project_id == project_id,
                                                         AssistModel.kind == "backend"))
        for row in rows:
            if row.details.get("model_version") == model_version and row.details.get("url") == url:
                return row.id
        latest = session.scalar(select(sa.func.max(AssistModel.version)).where(AssistModel.project_id == project_id))
        row = AssistModel(project_id=project_id, kind="backend", version=(latest or 0) + 1, training_size=0,
                          heldout_accuracy=None, details={"model_version": model_version, "url": url})
        session.add(row)
        session.flush()
        return row.id


def predict_open_items(project_id: int) -> dict[str, Any]:
    """Ask the backend for the open items its current model has not predicted yet.

    Each /predict answer must hold one prediction per task, each valid for the
    label config; an answer that does not is refused whole and logged.
    """
    session = db.session
    project, url = _backend_of(session, project_id)
    ref, label_config = _project_ref(project), project.label_config
    session.rollback()
    client = _client(url)
    try:
        model_version = client.setup(ref, label_config) or "unversioned"
    except mlbackend.BackendError as why:
        log.warning("project %s: %s", project_id, why)
        _note_failure(project_id, str(why))
        return {"predicted": 0, "error": str(why)}
    model_id = _model_row(project_id, url, model_version)
    config = parse_config(label_config)
    predicted, refused, after = 0, 0, 0
    while predicted + refused < PREDICT_PER_RUN:
        chunk = _unpredicted(project_id, model_id, after)
        if not chunk:
            break
        after = chunk[-1][0]
        tasks = [{"id": item_id, "data": data} for item_id, data in chunk]
        try:
            answers = client.predict(tasks, project=ref, label_config=label_config, model_version=model_version)
        except mlbackend.BadResponse as why:
            log.warning("project %s: %s", project_id, why)
            refused += len(tasks)
            _note_failure(project_id, str(why))
            continue
        except mlbackend.BackendError as why:
            log.warning("project %s: %s", project_id, why)
            _note_failure(project_id, str(why))
            return {"predicted": predicted, "refused": refused, "error": str(why)}
        rows = []
        for (item_id, _), answer in zip(chunk, answers):
            result = answer.get("result") or []
            try:
                validate_result(config, result, f"prediction for item {item_id}")
            except ResultError as why:
                log.warning("project %s: the ML backend's %s", project_id, why)
                refused += 1
                continue
            rows.append({"item_id": item_id, "assist_model_id": model_id, "result": result,
                         "score": answer.get("score"), "model_version": str(answer.get("model_version") or model_version)})
        store_predictions(project_id, rows)
        predicted += len(rows)
    if refused == 0:
        _note_failure(project_id, None)
    return {"predicted": predicted, "refused": refused, "model_version": model_version}


def _unpredicted(project_id: int, model_id: int, after: int) -> list[tuple[int, dict]]:
    found = open_items(db.session, project_id, after=after, limit=PREDICT_BATCH, lacking=model_id)
    db.session.rollback()
    return found


def _task_json(item_id: int, data: dict, project_id: int) -> dict:
    return {"id": item_id, "data": data, "project": project_id}


def notify_consensus(project_id: int, micro_task_id: int) -> int:
    """ANNOTATION_CREATED for each consensus label of the micro-task (two or more answers):
    the backend learns from consensus, as the built-in learner does, not from raw answers."""
    session = db.session
    project, url = _backend_of(session, project_id)
    project_json = {"id": project.id, "title": project.title, "label_config": project.label_config}
    rows = session.execute(
        select(Item.id, Item.data, ItemScore.consensus)
        .join(MicroTaskItem, MicroTaskItem.item_id == Item.id).join(ItemScore, ItemScore.item_id == Item.id)
        .where(MicroTaskItem.micro_task_id == micro_task_id, ItemScore.n_annotators >= MIN_ANSWERS_FOR_TRAINING,
               Item.is_gold.is_(False))).all()
    session.rollback()
    client, sent = _client(url), 0
    for item_id, data, consensus in rows:
        annotation = {"id": item_id, "task": item_id, "project": project_id, "result": consensus,
                      "ground_truth": False, "was_cancelled": False}
        try:
            client.webhook("ANNOTATION_CREATED", {"annotation": annotation, "task": _task_json(item_id, data, project_id),
                                                  "project": project_json})
        except mlbackend.BackendError as why:
            log.warning("project %s: %s", project_id, why)
            _note_failure(project_id, str(why))
            return sent
        sent += 1
    return sent


def start_training(project_id: int) -> dict[str, Any]:
    session = db.session
    project, url = _backend_of(session, project_id)
    project_json = {"id": project.id, "title": project.title, "label_config": project.label_config}
    session.rollback()
    try:
        answer = _client(url).webhook("START_TRAINING", {"project": project_json})
    except mlbackend.BackendError as why:
        _note_failure(project_id, str(why))
        return {"started": False, "error": str(why)}
    summary = predict_open_items(project_id)
    return {"started": True, "answer": answer, **summary}


def assisted_live_projects() -> list[tuple[int, str]]:
    rows = db.session.execute(select(Project.id, Project.assist).where(
        Project.status == "live", Project.archived_at.is_(None), Project.assist.in_(("builtin", "backend")))).all()
    db.session.rollback()
    return [(project_id, source) for project_id, source in rows]
