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

import hashlib
import json
import logging
import os
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
from . import audit, embeddings, projects
from .errors import Conflict, NotFound

log = logging.getLogger(__name__)

ASSIST_SOURCES = ("none", "builtin", "backend")
PREDICT_CHUNK = 2000
# A retrain rewrites an item's prediction only when its labels change or its score moves by more
# than this: finer than uncertainty order needs, coarse enough to leave most rows alone.
SCORE_TOLERANCE = 0.02
# The share of items in the random sample (`in_random_sample`): held out to measure models, and
# never moved by uncertainty order.
RANDOM_SAMPLE_SHARE = 0.1
HELD_OUT_WORDS = (f"measured on the gold answers and the consensus labels of a random {RANDOM_SAMPLE_SHARE:.0%} "
                  "sample of items (chosen by item id, never by the model), with a model trained on the rest; "
                  "consensus labels are wrong now and then, and a few dozen of them measure roughly: the range "
                  "is where the true figure lies, 19 times in 20")
# Consensus from a single answer is that person's raw answer: not a label to learn from.
MIN_ANSWERS_FOR_TRAINING = 2
# Label Studio turns a region's percentages into pixels and back, so a box accepted as it was shown
# comes back with y 19.999999999999996 for 20: numbers that agree to this many places are the same.
NUMBER_DIGITS = 6
# Regions over a text's offsets: Label Studio writes the text between them into the value.
SPAN_TYPES = ("labels", "hypertextlabels", "paragraphlabels")


# --- the anchoring guard --------------------------------------------------------------


def assisted(assignment_id: int, unassisted_share: float) -> bool:
    """Whether this assignment shows pre-annotations: a fixed pseudo-random draw per
    assignment, so a reload shows the same and `unassisted_share` of them show none."""
    draw = ((assignment_id * 2654435761) % 2**32) / 2**32  # Knuth's multiplicative hash
    return draw >= unassisted_share


def _rounded(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(round(value, NUMBER_DIGITS))
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _said(region: dict) -> Any:
    """A region's value without what Label Studio fills in itself when it shows the region."""
    value = region.get("value")
    if not isinstance(value, dict):
        return value
    value = dict(value)
    if value.get("rotation") == 0:  # a box that is not turned, whether the suggestion said so or not
        del value["rotation"]
    if region.get("type") in SPAN_TYPES:  # the span's text, read from the item at its offsets
        value.pop("text", None)
    return value


def _canonical(result: Any) -> list[str]:
    regions = []
    for region in result or ():
        if isinstance(region, dict):
            said = {"from_name": region.get("from_name"), "to_name": region.get("to_name"),
                    "type": region.get("type"), "value": _said(region)}
            regions.append(json.dumps(_rounded(said), sort_keys=True))
    return sorted(regions)


def same_result(a: Any, b: Any) -> bool:
    """Two Label Studio results say the same thing: region ids, scores and origins aside, numbers
    to NUMBER_DIGITS decimal places, and whether or not they spell out what Label Studio fills in
    (a box's rotation of 0, a span's text)."""
    return _canonical(a) == _canonical(b)


def sure_enough(score: float | None, bar: float) -> bool:
    """Whether a pre-annotation is shown: a project may hide those its model is unsure of
    (a prediction without a score is shown only when there is no bar)."""
    return bar <= 0 or (score is not None and score >= bar)


def newest_predictions(session, item_ids: Iterable[int]) -> dict[int, Prediction]:
    """The newest prediction of each item: the one the workbench shows."""
    found: dict[int, Prediction] = {}
    ids = list(item_ids)
    if ids:
        for p in session.scalars(select(Prediction).where(Prediction.item_id.in_(ids)).order_by(Prediction.id)):
            found[p.item_id] = p
    return found


# --- the built-in learner -------------------------------------------------------------


def in_random_sample(item_id: int) -> bool:
    """Whether an item belongs to the project's random sample: a fixed draw by item id (Knuth's
    multiplicative hash, so consecutive ids spread evenly), which no model ever influences.
    Uncertainty order leaves these items where the import put them, so their consensus labels
    stay a random sample on which held-out accuracy means what it says."""
    return ((item_id * 2654435761 + 40503) % 2**32) / 2**32 < RANDOM_SAMPLE_SHARE


def _training_pairs(session, project: Project,
                    task: learner.TextChoiceTask) -> tuple[list[int], list[list[str]], list[bool]]:
    """Items to learn from, their labels, and which of them measure held-out accuracy: the gold
    answers and the consensus labels of the random sample."""
    ids, labels, held_out = [], [], []
    consensus = (select(Item.id, ItemScore.consensus).join(ItemScore, ItemScore.item_id == Item.id)
                 .where(ItemScore.project_id == project.id, ItemScore.n_annotators >= MIN_ANSWERS_FOR_TRAINING,
                        Item.is_gold.is_(False))
                 .order_by(Item.id))
    known = (select(Item.id, GoldAnswer.result).join(GoldAnswer, GoldAnswer.item_id == Item.id)
             .where(Item.project_id == project.id).order_by(Item.id))
    for stmt, gold in ((consensus, False), (known, True)):
        for item_id, result in session.execute(stmt):
            chosen = learner.choices_in(task, result)
            if chosen:
                ids.append(item_id)
                labels.append(chosen)
                held_out.append(gold or in_random_sample(item_id))
    return ids, labels, held_out


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


def reads_neighbourhoods(project: Project) -> bool:
    """Whether the project's built-in model reads each text's neighbourhood among a sample of the
    project (learner.neighbourhood): in uncertainty order, where it picks better items; the default
    order keeps plain vectors, a point more accurate there below 500 labels."""
    return project.queue_order == "uncertainty"


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
        ids, labels, held_out = _training_pairs(session, project, task)
        last = _latest_model(session, project_id)
        version = (last.version if last else 0) + 1
        smoothed = reads_neighbourhoods(project)
        session.rollback()  # no transaction held while texts are encoded and the model fits
        embeddings.embed_items(project_id, task, ids)  # usually done already, by the refresh after publishing
        vectors = embeddings.matrix(embeddings.vectors(db.session, task, ids), ids)
        reference = (embeddings.sample(db.session, project_id, task, learner.REFERENCE_SIZE)
                     if smoothed else None)
        db.session.rollback()
        trained = learner.train(task, vectors, labels, held_out=held_out, seed=version, reference=reference)
    except learner.CannotLearn as why:
        session.rollback()
        return {"trained": False, "why": str(why)}
    folder = _model_root() / f"project-{project_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{version}.joblib"
    path.write_bytes(trained.dumps())
    reference_path = _store_reference(folder, trained)
    try:
        with db.transaction() as session:
            model = AssistModel(project_id=project_id, kind="builtin", version=version,
                                training_size=trained.training_size, heldout_accuracy=trained.heldout_accuracy,
                                artifact_path=str(path.relative_to(_model_root())),
                                details={"seconds": round(trained.seconds, 3), "heldout_size": trained.heldout_size,
                                         "heldout_interval": (learner.interval(trained.heldout_accuracy,
                                                                               trained.heldout_size)
                                                              if trained.heldout_accuracy is not None else None),
                                         "heldout": HELD_OUT_WORDS,
                                         "labels": list(task.labels), "control": task.control,
                                         "features": trained.features, "classifier": learner.CLASSIFIER,
                                         "reference": reference_path})
            session.add(model)
            session.flush()
            model_id = model.id
    except IntegrityError:  # another run stored this version first
        path.unlink(missing_ok=True)
        return {"trained": False, "why": f"version {version} was trained meanwhile"}
    stored = predict_open_items(project_id, model_id, trained)
    return {"trained": True, "version": version, "model_id": model_id, "training_size": trained.training_size,
            "heldout_accuracy": trained.heldout_accuracy, "seconds": trained.seconds, **stored}


def _store_reference(folder: Path, trained: learner.Trained) -> str | None:
    """The items a neighbourhood model compares with, in a file named after its content: versions
    trained while the project's items stayed the same share it (4,000 vectors take 3 MB)."""
    raw = trained.reference_bytes()
    if raw is None:
        return None
    path = folder / f"reference-{hashlib.sha256(raw).hexdigest()[:16]}.npy"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(raw)
        partial.replace(path)  # whole or absent, for a model version loading it meanwhile
    return str(path.relative_to(_model_root()))


def load_model(model: AssistModel) -> learner.Trained:
    """The stored model; OutdatedModel (the next refresh trains anew) if it is of an earlier learner or
    its reference file is gone."""
    reference = (model.details or {}).get("reference")
    path = _model_root() / reference if reference else None
    raw_reference = path.read_bytes() if path is not None and path.is_file() else None
    return learner.Trained.loads((_model_root() / model.artifact_path).read_bytes(), raw_reference)


def open_items(session, project_id: int, *, after: int = 0, limit: int = PREDICT_CHUNK,
               lacking: int | None = None, unpredicted: bool = False) -> list[tuple[int, dict]]:
    """Items still being labeled (no consensus yet, or flagged for more answers), by id, gold left out;
    with `lacking`, only those the assist model of that id has not predicted; with `unpredicted`,
    only those no assist model has predicted."""
    stmt = (select(Item.id, Item.data).outerjoin(ItemScore, ItemScore.item_id == Item.id)
            .where(Item.project_id == project_id, Item.is_gold.is_(False), Item.id > after,
                   sa.or_(ItemScore.item_id.is_(None), ItemScore.flagged.is_(True)))
            .order_by(Item.id).limit(limit))
    if lacking is not None:
        stmt = stmt.where(~sa.exists().where(Prediction.item_id == Item.id, Prediction.assist_model_id == lacking))
    if unpredicted:
        stmt = stmt.where(~sa.exists().where(Prediction.item_id == Item.id, Prediction.assist_model_id.is_not(None)))
    return [(item_id, data) for item_id, data in session.execute(stmt)]


def predict_open_items(project_id: int, model_id: int, trained: learner.Trained | None = None, *,
                       missing_only: bool = False) -> dict[str, int]:
    """The model's predictions for the open items (only those no model has predicted, with
    `missing_only`): how many it predicted, and how many rows that wrote. A retrain leaves an item's
    prediction alone when it chose the same labels with a score within SCORE_TOLERANCE."""
    session = db.session
    model = session.get(AssistModel, model_id)
    trained = trained or load_model(model)
    version = f"builtin-v{model.version}"
    session.rollback()
    after, predicted, written = 0, 0, 0
    while True:
        chunk = open_items(db.session, project_id, after=after, unpredicted=missing_only)
        db.session.rollback()
        if not chunk:
            return {"predicted": predicted, "written": written}
        ids = [item_id for item_id, _ in chunk]
        embeddings.embed_items(project_id, trained.task, ids)
        guesses = trained.predict(embeddings.matrix(embeddings.vectors(db.session, trained.task, ids), ids))
        db.session.rollback()
        rows = [{"item_id": item_id, "assist_model_id": model_id, "result": learner.result_for(trained.task, labels),
                 "score": confidence, "model_version": version}
                for (item_id, _), (labels, confidence) in zip(chunk, guesses)]
        written += store_predictions(project_id, rows, score_tolerance=SCORE_TOLERANCE)
        predicted += len(rows)
        after = chunk[-1][0]


def store_predictions(project_id: int, rows: Sequence[dict], *, score_tolerance: float | None = None) -> int:
    """Make `rows` the model-made predictions of their items (imported ones stay); returns the rows written.

    Only what changed is written: an item without a model-made prediction gets one, and an
    existing one is updated in place when its result or model differs, or its score does (by
    more than `score_tolerance`, when given: then a different model saying the same thing leaves
    the row as it was). Rewriting every open item's row on each retrain left PostgreSQL a dead
    row per open item per retrain and slowed next and submit until a vacuum.
    """
    if not rows:
        return 0
    ids = [r["item_id"] for r in rows]
    now = utcnow()
    with db.transaction() as session:
        existing: dict[int, tuple] = {}
        stale: list[int] = []
        for row in session.execute(select(Prediction.id, Prediction.item_id, Prediction.result, Prediction.score,
                                          Prediction.assist_model_id)
                                   .where(Prediction.item_id.in_(ids), Prediction.assist_model_id.is_not(None))
                                   .order_by(Prediction.id)):
            if row.item_id in existing:  # more than one model-made prediction: keep the newest
                stale.append(existing[row.item_id].id)
            existing[row.item_id] = row
        inserts, updates = [], []
        for r in rows:
            old = existing.get(r["item_id"])
            if old is None:
                inserts.append({**r, "created_at": now})
            elif not _same_prediction(old, r, score_tolerance):
                updates.append({**r, "id": old.id, "created_at": now})
        if stale:
            session.execute(sa.delete(Prediction).where(Prediction.id.in_(stale)))
        if inserts:
            session.execute(sa.insert(Prediction), inserts)
        if updates:
            session.execute(sa.update(Prediction), updates)
    return len(inserts) + len(updates)


def _same_prediction(old, new: dict, score_tolerance: float | None) -> bool:
    if not same_result(old.result, new["result"]):
        return False
    if old.score is None or new.get("score") is None:
        return old.score is None and new.get("score") is None and old.assist_model_id == new["assist_model_id"]
    if score_tolerance is None:
        return old.score == new["score"] and old.assist_model_id == new["assist_model_id"]
    return abs(old.score - new["score"]) <= score_tolerance


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
    """Every item gets its vector; the built-in model predicts items that arrived since it was
    trained; then it retrains if due (or at once, when it was made by an earlier learner or reads
    other features than the project's queue order wants)."""
    session = db.session
    project = session.get(Project, project_id)
    if project is None or project.assist != "builtin":
        session.rollback()
        return {"predicted": 0}
    config = project.label_config
    wanted = learner.NEIGHBOURHOOD_FEATURES if reads_neighbourhoods(project) else learner.FEATURES
    latest = _latest_model(session, project_id, "builtin")
    other_features = latest is not None and (latest.details or {}).get("features") != wanted
    session.rollback()
    try:
        task = learner.text_choice_task(parse_config(config))
    except learner.CannotLearn as why:
        return {"predicted": 0, "trained": False, "why": str(why)}
    encoded = embeddings.embed_items(project_id, task)
    try:
        predicted = predict_open_items(project_id, latest.id, missing_only=True)["predicted"] if latest else 0
    except learner.OutdatedModel:
        return {"encoded": encoded, "predicted": 0, **train_builtin(project_id, force=True)}
    return {"encoded": encoded, "predicted": predicted, **train_builtin(project_id, force=other_features)}


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
