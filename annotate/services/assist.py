"""Model assistance: the built-in learner's models and predictions, and the
anchoring guard that measures what pre-annotations do to the labels.

The learner trains on consensus labels of items at least two annotators
answered and on gold answers, never on one person's raw answer. Training
runs outside any transaction (it takes seconds); storing the model and its
predictions is one unit of work each. ML backends (`mlbackends`) write
their predictions through `store_predictions` too, so the workbench, the
uncertainty order and the anchoring panel do not care where a prediction
came from.
"""
from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..assist import learner
from ..extensions import db
from ..labelconfig import parse_config
from ..models import (Annotation, Assignment, AssignmentScore, AssistModel, GoldAnswer, Item, ItemScore, MicroTask,
                      Prediction, Project, User, utcnow)
from ..queue import enqueue
from . import audit, projects
from .errors import Conflict, NotFound

log = logging.getLogger(__name__)

ASSIST_SOURCES = ("none", "builtin", "backend")
PREDICT_CHUNK = 2000
# Consensus from a single answer is that person's raw answer: not a label to learn from.
MIN_ANSWERS_FOR_TRAINING = 2


# --- the anchoring guard --------------------------------------------------------------


def assisted(assignment_id: int, unassisted_share: float) -> bool:
    """Whether this assignment shows pre-annotations: a fixed pseudo-random draw per
    assignment, so a reload shows the same and `unassisted_share` of them show none."""
    draw = ((assignment_id * 2654435761) % 2**32) / 2**32  # Knuth's multiplicative hash
    return draw >= unassisted_share


def _canonical(result: Any) -> list[str]:
    regions = []
    for region in result or ():
        if isinstance(region, dict):
            regions.append(json.dumps({k: region.get(k) for k in ("from_name", "to_name", "type", "value")},
                                      sort_keys=True))
    return sorted(regions)


def same_result(a: Any, b: Any) -> bool:
    """Two Label Studio results say the same thing (region ids, scores and origins aside)."""
    return _canonical(a) == _canonical(b)


def newest_predictions(session, item_ids: Iterable[int]) -> dict[int, Prediction]:
    """The newest prediction of each item: the one the workbench shows."""
    found: dict[int, Prediction] = {}
    ids = list(item_ids)
    if ids:
        for p in session.scalars(select(Prediction).where(Prediction.item_id.in_(ids)).order_by(Prediction.id)):
            found[p.item_id] = p
    return found


# --- the built-in learner -------------------------------------------------------------


def _training_pairs(session, project: Project, task: learner.TextChoiceTask) -> tuple[list[str], list[list[str]]]:
    texts, labels = [], []
    consensus = (select(Item.data, ItemScore.consensus).join(ItemScore, ItemScore.item_id == Item.id)
                 .where(ItemScore.project_id == project.id, ItemScore.n_annotators >= MIN_ANSWERS_FOR_TRAINING,
                        Item.is_gold.is_(False))
                 .order_by(Item.id))
    known = (select(Item.data, GoldAnswer.result).join(GoldAnswer, GoldAnswer.item_id == Item.id)
             .where(Item.project_id == project.id).order_by(Item.id))
    for stmt in (consensus, known):
        for data, result in session.execute(stmt):
            chosen = learner.choices_in(task, result)
            if chosen:
                texts.append((data or {}).get(task.data_key))
                labels.append(chosen)
    return texts, labels


def trainable_count(session, project_id: int) -> int:
    consensus = session.scalar(select(func.count()).select_from(ItemScore).join(Item, Item.id == ItemScore.item_id)
                               .where(ItemScore.project_id == project_id,
                                      ItemScore.n_annotators >= MIN_ANSWERS_FOR_TRAINING, Item.is_gold.is_(False)))
    known = session.scalar(select(func.count()).select_from(GoldAnswer).join(Item, Item.id == GoldAnswer.item_id)
                           .where(Item.project_id == project_id))
    return (consensus or 0) + (known or 0)


def _latest_model(session, project_id: int, kind: str | None = None) -> AssistModel | None:
    stmt = select(AssistModel).where(AssistModel.project_id == project_id)
    if kind:
        stmt = stmt.where(AssistModel.kind == kind)
    return session.scalar(stmt.order_by(AssistModel.version.desc()).limit(1))


def retrain_due(session, project: Project) -> bool:
    """Enough new consensus labels since the last model: `retrain_growth` more (and the minimum)."""
    count = trainable_count(session, project.id)
    last = _latest_model(session, project.id, "builtin")
    if last is None:
        return count >= learner.MIN_LABELS
    return count >= max(learner.MIN_LABELS, last.training_size * (1 + project.retrain_growth))


def _model_root() -> Path:
    return Path(current_app.config["MODEL_ROOT"])


def train_builtin(project_id: int, *, force: bool = False) -> dict[str, Any]:
    """Train a new version of the project's built-in model if it is due (or forced),
    then predict its open items. Returns what happened, in words where nothing did."""
    session = db.session
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    if project.assist != "builtin":
        session.rollback()
        return {"trained": False, "why": f"the project's assist is {project.assist}, not builtin"}
    if not force and not retrain_due(session, project):
        session.rollback()
        return {"trained": False, "why": "not enough new consensus labels since the last model"}
    try:
        task = learner.text_choice_task(parse_config(project.label_config))
        texts, labels = _training_pairs(session, project, task)
        session.rollback()  # no transaction held while the model fits
        last = _latest_model(session, project_id)
        version = (last.version if last else 0) + 1
        trained = learner.train(task, texts, labels, seed=version)
    except learner.CannotLearn as why:
        session.rollback()
        return {"trained": False, "why": str(why)}
    folder = _model_root() / f"project-{project_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{version}.joblib"
    path.write_bytes(trained.dumps())
    try:
        with db.transaction() as session:
            model = AssistModel(project_id=project_id, kind="builtin", version=version,
                                training_size=trained.training_size, heldout_accuracy=trained.heldout_accuracy,
                                artifact_path=str(path.relative_to(_model_root())),
                                details={"seconds": round(trained.seconds, 3), "heldout_size": trained.heldout_size,
                                         "labels": list(task.labels), "control": task.control,
                                         "features": "tf-idf word 1-2 grams", "classifier": "logistic regression"})
            session.add(model)
            session.flush()
            model_id = model.id
    except IntegrityError:  # another run stored this version first
        path.unlink(missing_ok=True)
        return {"trained": False, "why": f"version {version} was trained meanwhile"}
    predicted = predict_open_items(project_id, model_id, trained)
    return {"trained": True, "version": version, "model_id": model_id, "training_size": trained.training_size,
            "heldout_accuracy": trained.heldout_accuracy, "seconds": trained.seconds, "predicted": predicted}


def load_model(model: AssistModel) -> learner.Trained:
    return learner.Trained.loads((_model_root() / model.artifact_path).read_bytes())


def open_items(session, project_id: int, *, after: int = 0, limit: int = PREDICT_CHUNK,
               lacking: int | None = None) -> list[tuple[int, dict]]:
    """Items still being labeled (no consensus yet, or flagged for more answers), by id, gold left out;
    with `lacking`, only those the assist model of that id has not predicted."""
    stmt = (select(Item.id, Item.data).outerjoin(ItemScore, ItemScore.item_id == Item.id)
            .where(Item.project_id == project_id, Item.is_gold.is_(False), Item.id > after,
                   sa.or_(ItemScore.item_id.is_(None), ItemScore.flagged.is_(True)))
            .order_by(Item.id).limit(limit))
    if lacking is not None:
        stmt = stmt.where(~sa.exists().where(Prediction.item_id == Item.id, Prediction.assist_model_id == lacking))
    return [(item_id, data) for item_id, data in session.execute(stmt)]


def predict_open_items(project_id: int, model_id: int, trained: learner.Trained | None = None, *,
                       missing_only: bool = False) -> int:
    """Write the model's predictions for the open items (those it has not predicted, with
    `missing_only`), replacing older model predictions."""
    session = db.session
    model = session.get(AssistModel, model_id)
    trained = trained or load_model(model)
    version = f"builtin-v{model.version}"
    session.rollback()
    after, written = 0, 0
    while True:
        chunk = open_items(db.session, project_id, after=after, lacking=model_id if missing_only else None)
        db.session.rollback()
        if not chunk:
            return written
        guesses = trained.predict([(data or {}).get(trained.task.data_key) for _, data in chunk])
        rows = [{"item_id": item_id, "assist_model_id": model_id, "result": learner.result_for(trained.task, labels),
                 "score": confidence, "model_version": version}
                for (item_id, _), (labels, confidence) in zip(chunk, guesses)]
        store_predictions(project_id, rows)
        written += len(rows)
        after = chunk[-1][0]


def store_predictions(project_id: int, rows: Sequence[dict]) -> None:
    """Replace the model-made predictions of these items with `rows`; imported ones stay."""
    if not rows:
        return
    ids = [r["item_id"] for r in rows]
    models = select(AssistModel.id).where(AssistModel.project_id == project_id).scalar_subquery()
    now = utcnow()
    with db.transaction() as session:
        session.execute(sa.delete(Prediction).where(Prediction.item_id.in_(ids),
                                                    Prediction.assist_model_id.in_(models)))
        session.execute(sa.insert(Prediction), [{**r, "created_at": now} for r in rows])


# --- what a requester sees and does ---------------------------------------------------


def models(user_id: int, project_id: int) -> list[AssistModel]:
    session = db.session
    projects.visible_project(session, session.get_one(User, user_id), project_id)
    return list(session.scalars(select(AssistModel).where(AssistModel.project_id == project_id)
                                .order_by(AssistModel.version.desc())))


def request_training(user_id: int, project_id: int) -> str:
    """"Train now": a new built-in model, or START_TRAINING sent to the project's ML backend."""
    with db.transaction() as session:
        project = projects.visible_project(session, session.get_one(User, user_id), project_id)
        if project.assist == "none":
            raise Conflict("model assistance is off for this project: choose built-in or an ML backend first",
                           field="assist")
        audit.record(session, actor_id=user_id, action="request_training", target_type="project",
                     target_id=project_id, assist=project.assist)
        assist = project.assist
    if assist == "builtin":
        return enqueue("tasks.assist.train_builtin", project_id, True, job_id=f"assist-train-{project_id}")
    return enqueue("tasks.assist.backend_train", project_id, job_id=f"assist-backend-train-{project_id}")


def source_of(project_id: int) -> str | None:
    source = db.session.scalar(select(Project.assist).where(Project.id == project_id))
    db.session.rollback()
    return source


def refresh(project_id: int) -> dict[str, Any]:
    """The built-in model predicts items that arrived since it was trained, then retrains if due."""
    session = db.session
    project = session.get(Project, project_id)
    if project is None or project.assist != "builtin":
        session.rollback()
        return {"predicted": 0}
    latest = _latest_model(session, project_id, "builtin")
    session.rollback()
    predicted = predict_open_items(project_id, latest.id, missing_only=True) if latest else 0
    return {"predicted": predicted, **train_builtin(project_id)}


def after_split(project_id: int) -> None:
    """New micro-tasks: predictions for their items, from whichever source the project uses."""
    if source_of(project_id) in ("builtin", "backend"):
        enqueue("tasks.assist.refresh_project", project_id, job_id=f"assist-refresh-{project_id}")


def after_scoring(micro_task_id: int) -> None:
    """After a micro-task is scored: retrain when due, or tell the ML backend of the new consensus."""
    session = db.session
    row = session.execute(select(Project.id, Project.assist).join(MicroTask, MicroTask.project_id == Project.id)
                          .where(MicroTask.id == micro_task_id)).one_or_none()
    if row is None or row.assist == "none":
        session.rollback()
        return
    if row.assist == "builtin":
        due = retrain_due(session, session.get(Project, row.id))
        session.rollback()
        if due:
            enqueue("tasks.assist.train_builtin", row.id, job_id=f"assist-train-{row.id}")
    else:
        session.rollback()
        enqueue("tasks.assist.backend_notify", row.id, micro_task_id)


# --- the anchoring panel --------------------------------------------------------------


def anchoring_report(user_id: int, project_id: int) -> dict[str, Any]:
    """Agreement with consensus, gold accuracy and active seconds per item, with and
    without pre-annotations, and the share of pre-annotations accepted unchanged.

    The two groups are assignments: `unassisted_share` of them are served without
    pre-annotations at random (`assisted`), so the comparison is a fair A/B split.
    Gold items never carry pre-annotations, so gold accuracy compares workers who
    were seeing a model's suggestions on the other items with workers who were not.
    """
    session = db.session
    projects.visible_project(session, session.get_one(User, user_id), project_id)
    groups: dict[bool, dict[str, Any]] = {}
    for shown in (True, False):
        mine = sa.and_(Assignment.project_id == project_id, Assignment.status == "submitted",
                       Assignment.with_predictions.is_(shown))
        assignments = session.scalar(select(func.count()).select_from(Assignment).where(mine)) or 0
        details = session.execute(select(AssignmentScore.details, AssignmentScore.gold_right,
                                         AssignmentScore.gold_total)
                                  .join(Assignment, Assignment.id == AssignmentScore.assignment_id).where(mine))
        agreed = compared = right = total = 0
        for detail, gold_right, gold_total in details:
            for tally in ((detail or {}).get("controls") or {}).values():
                agreed += int(tally.get("agreed", 0))
                compared += int(tally.get("compared", 0))
            right += gold_right or 0
            total += gold_total or 0
        ordinary = (select(Annotation.seconds, Annotation.had_prediction, Annotation.accepted_prediction)
                    .join(Assignment, Assignment.id == Annotation.assignment_id)
                    .join(Item, Item.id == Annotation.item_id)
                    .where(mine, Item.is_gold.is_(False)).order_by(Annotation.id.desc()).limit(200_000))
        seconds, prefilled, accepted = [], 0, 0
        for secs, had, took in session.execute(ordinary):
            seconds.append(secs)
            prefilled += int(had)
            accepted += int(took)
        groups[shown] = {
            "assignments": assignments,
            "agreement": agreed / compared if compared else None, "agreed": agreed, "compared": compared,
            "gold_accuracy": right / total if total else None, "gold_right": right, "gold_total": total,
            "median_seconds": statistics.median(seconds) if seconds else None, "items": len(seconds),
            "prefilled": prefilled,
            "accepted_share": accepted / prefilled if prefilled else None, "accepted": accepted,
        }
    session.rollback()
    return {"with": groups[True], "without": groups[False], "verdict": _verdict(groups[True], groups[False])}


def _verdict(shown: dict, hidden: dict) -> str | None:
    """A sentence for the operator when the numbers say something, else None."""
    if not shown["items"] or not hidden["items"]:
        return None
    faster = (shown["median_seconds"] is not None and hidden["median_seconds"]
              and shown["median_seconds"] < 0.9 * hidden["median_seconds"])
    worse = []
    if shown["agreement"] is not None and hidden["agreement"] is not None \
            and shown["agreement"] < hidden["agreement"] - 0.05:
        worse.append(f"agreement with consensus {shown['agreement']:.0%} against {hidden['agreement']:.0%}")
    if shown["gold_accuracy"] is not None and hidden["gold_accuracy"] is not None \
            and shown["gold_accuracy"] < hidden["gold_accuracy"] - 0.05:
        worse.append(f"gold accuracy {shown['gold_accuracy']:.0%} against {hidden['gold_accuracy']:.0%}")
    if faster and worse:
        return ("The model makes workers faster but worse: " + "; ".join(worse) +
                f", at {shown['median_seconds']:.1f} s an item against {hidden['median_seconds']:.1f} s.")
    if worse:
        return "With pre-annotations the labels are worse: " + "; ".join(worse) + "."
    if faster:
        return (f"Pre-annotations make workers faster ({shown['median_seconds']:.1f} s an item against "
                f"{hidden['median_seconds']:.1f} s) with no measurable loss of quality.")
    return None
