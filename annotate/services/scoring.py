"""Scoring finished micro-tasks: consensus per item, quality per assignment
and annotator, and the automatic pay decision.

- `score_micro_task`: the background job run when a micro-task has its k
  submissions (and after a qualification submit).
- `reestimate_project`: Dawid-Skene over all the project's single-choice
  answers, then the same scoring of every finished micro-task with the
  fitted model; on a schedule and on demand.
- `extra_overlap_needed`: how many more annotators unsure micro-tasks need.

Scores are upserts and money goes through `annotate.services.pay` with
idempotency keys, so both jobs are safe to retry and to run concurrently.
The per-control consensus lives in `annotate.services.consensus`.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..extensions import db
from ..labelconfig import LabelConfig, parse_config
from ..models import (AnnotatorScore, Annotation, Assignment, AssignmentScore, GoldAnswer, Item, ItemScore,
                      MicroTask, MicroTaskItem, Project, ProjectScore, utcnow)
from ..scoring import agreement as agr
from ..scoring import consensus as cons
from ..scoring import pay as pay_rules
from ..scoring import quality as qual
from . import gold
from . import pay
from .consensus import ChoiceModel, Vote, choice_of, control_kind, item_consensus, scored_controls
from .errors import NotFound

log = logging.getLogger(__name__)

# An annotator's quality is over their most recent scored assignments on the project.
WINDOW_ASSIGNMENTS = 100
# Dawid-Skene needs items with several answers to learn confusion matrices from.
DS_MIN_ITEMS = 20
# Krippendorff's alpha needs the dense items x annotators matrix: skip it beyond this.
ALPHA_MAX_CELLS = 5_000_000

RULE_QUALIFICATION = "qualification_paid"


# --------------------------------------------------------------------------
# Use cases
# --------------------------------------------------------------------------


def score_micro_task(micro_task_id: int) -> dict[str, Any]:
    """Score a finished micro-task and decide its pending assignments.

    Writes an ItemScore per non-gold item, an AssignmentScore per submitted
    assignment, refreshes its annotators' AnnotatorScores, then approves
    (and pays) each pending assignment whose annotator's quality meets the
    project's threshold; the others wait for the requester, with the rule
    they missed. Single-choice controls use the project's last Dawid-Skene
    model when `reestimate_project` has fitted one, majority vote before.
    A qualification micro-task is not scored (the submit did that): its
    submitted work is approved and paid at the qualification rate.
    """
    with db.transaction() as session:
        # The row lock makes concurrent runs on one micro-task take turns.
        mt = session.scalar(select(MicroTask).where(MicroTask.id == micro_task_id).with_for_update())
        if mt is None:
            raise NotFound(f"no micro-task {micro_task_id}")
        project = session.get(Project, mt.project_id)
        summary: dict[str, Any] = {"micro_task_id": micro_task_id, "items": 0, "assignments": 0,
                                   "approved": [], "pending": []}
        if mt.is_qualification:
            summary["approved"] = _pay_qualification(session, project, mt)
            return summary
        if mt.status != "done":
            summary["why"] = f"the micro-task is {mt.status}, not done"
            return summary
        config = parse_config(project.label_config)
        batch = _load(session, Assignment.micro_task_id == micro_task_id)
        scored = _score(session, project, config, batch, _stored_models(session, project.id))
        qualities = _refresh_annotators(session, project, {a.annotator_id for a in batch.assignments.values()})
        approved, pending = _decide(session, project, batch, qualities)
        summary.update(items=scored, assignments=len(batch.assignments), approved=approved, pending=pending)
    return summary


def reestimate_project(project_id: int) -> dict[str, Any]:
    """Dawid-Skene over all single-choice answers of the project, then re-score every finished micro-task.

    One `dawid_skene` call per single-choice control (over arrays of all
    answers) where there are at least `DS_MIN_ITEMS` items with two or more
    answers; the confusion matrices go to the AnnotatorScores and the class
    priors to the ProjectScore, with Krippendorff's alpha. Still-pending
    assignments are decided again with the new qualities. Idempotent.
    """
    with db.transaction() as session:
        project = session.scalar(select(Project).where(Project.id == project_id).with_for_update())
        if project is None:
            raise NotFound(f"no project {project_id}")
        config = parse_config(project.label_config)
        batch = _load(session, MicroTask.project_id == project_id, MicroTask.status == "done",
                      MicroTask.is_qualification.is_(False))
        models, fits = _fit_models(config, batch)
        scored = _score(session, project, config, batch, models)
        annotators = set(session.scalars(select(Assignment.annotator_id).join(AssignmentScore).where(
            Assignment.project_id == project_id)))
        qualities = _refresh_annotators(session, project, annotators, ds=_ds_details(models, fits))
        approved, pending = _decide(session, project, batch, qualities)
        _write_project_score(session, project, config, batch, models, fits)
    return {"project_id": project_id, "items": scored, "assignments": len(batch.assignments),
            "dawid_skene": sorted(models), "approved": approved, "pending": pending}


def extra_overlap_needed(project_id: int, micro_task_id: int | None = None) -> dict[int, int]:
    """Micro-task id -> how many more annotators it needs, for items below the confidence target.

    One more per round (`micro_task_extra` of `extra_annotators_needed`),
    never beyond the project's max_overlap. Only micro-tasks that need any;
    only `micro_task_id` when given.
    """
    session = db.session
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    stmt = (select(MicroTaskItem.micro_task_id, MicroTask.overlap, ItemScore.confidence)
            .join(MicroTask, MicroTask.id == MicroTaskItem.micro_task_id)
            .join(ItemScore, ItemScore.item_id == MicroTaskItem.item_id)
            .where(MicroTask.project_id == project_id, MicroTask.status == "done",
                   MicroTask.is_qualification.is_(False), ItemScore.flagged.is_(True)))
    if micro_task_id is not None:
        stmt = stmt.where(MicroTask.id == micro_task_id)
    rows = session.execute(stmt).all()
    session.rollback()
    if not rows:
        return {}
    ids = sorted({r.micro_task_id for r in rows})
    index = {mt: i for i, mt in enumerate(ids)}
    needed = cons.extra_annotators_needed([r.confidence for r in rows], [r.overlap for r in rows],
                                          target=project.confidence_target, max_overlap=project.max_overlap)
    extra = cons.micro_task_extra(needed, [index[r.micro_task_id] for r in rows], len(ids))
    return {mt: int(e) for mt, e in zip(ids, extra) if e > 0}


# --------------------------------------------------------------------------
# Loading answers
# --------------------------------------------------------------------------


@dataclass
class _Batch:
    """The submitted work of some finished micro-tasks."""

    assignments: dict[int, Any] = field(default_factory=dict)  # id -> row
    micro_tasks: dict[int, MicroTask] = field(default_factory=dict)
    answers: dict[int, list[tuple[int, list]]] = field(default_factory=dict)  # item -> [(assignment, result)]
    gold_answers: dict[int, list[tuple[int, list]]] = field(default_factory=dict)  # assignment -> [(item, result)]
    gold: dict[int, list] = field(default_factory=dict)  # gold item -> expected result


def _load(session: Session, *where: Any) -> _Batch:
    batch = _Batch()
    for a in session.execute(
            select(Assignment.id, Assignment.annotator_id, Assignment.micro_task_id, Assignment.decision)
            .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
            .where(Assignment.status == "submitted", *where).order_by(Assignment.id)):
        batch.assignments[a.id] = a
    if not batch.assignments:
        return batch
    mt_ids = {a.micro_task_id for a in batch.assignments.values()}
    batch.micro_tasks = {mt.id: mt for mt in session.scalars(select(MicroTask).where(MicroTask.id.in_(mt_ids)))}
    rows = session.execute(
        select(Annotation.assignment_id, Annotation.item_id, Annotation.result, Item.is_gold)
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .join(Item, Item.id == Annotation.item_id)
        .where(Assignment.status == "submitted", *where)
        .order_by(Annotation.item_id, Annotation.assignment_id))
    gold_items = set()
    for assignment_id, item_id, result, is_gold in rows:
        if is_gold:
            gold_items.add(item_id)
            batch.gold_answers.setdefault(assignment_id, []).append((item_id, result))
        else:
            batch.answers.setdefault(item_id, []).append((assignment_id, result))
    if gold_items:
        batch.gold = dict(session.execute(select(GoldAnswer.item_id, GoldAnswer.result)
                                          .where(GoldAnswer.item_id.in_(gold_items))).all())
    return batch


# --------------------------------------------------------------------------
# Dawid-Skene models
# --------------------------------------------------------------------------


def _choice_answers(config: LabelConfig, batch: _Batch, control_name: str, labels: list[str]):
    """Arrays (item position, annotator id, label index) of one single-choice control; unknown labels dropped."""
    code = {label: i for i, label in enumerate(labels)}
    items, positions, who, given = [], [], [], []
    for item_id, answers in batch.answers.items():
        for assignment_id, result in answers:
            label = choice_of([r for r in result or [] if isinstance(r, dict)
                               and r.get("from_name") == control_name])
            if label is None or label not in code:
                continue
            if not items or items[-1] != item_id:
                items.append(item_id)
            positions.append(len(items) - 1)
            who.append(batch.assignments[assignment_id].annotator_id)
            given.append(code[label])
    return items, np.array(positions, dtype=np.int64), np.array(who, dtype=np.int64), np.array(given, dtype=np.int64)


def _vocabulary(config: LabelConfig, batch: _Batch, control) -> list[str]:
    labels = list(control.labels)
    seen = {choice_of([r for r in result or [] if isinstance(r, dict) and r.get("from_name") == control.name])
            for answers in batch.answers.values() for _, result in answers}
    return labels + sorted(seen - set(labels) - {None})


def _fit_models(config: LabelConfig, batch: _Batch) -> tuple[dict[str, ChoiceModel], dict[str, dict]]:
    """One Dawid-Skene fit per single-choice control that has enough answers."""
    models: dict[str, ChoiceModel] = {}
    fits: dict[str, dict] = {}
    for control in scored_controls(config):
        if control_kind(config, control) != "choice":
            continue
        labels = _vocabulary(config, batch, control)
        items, position, annotator, label = _choice_answers(config, batch, control.name, labels)
        workers, worker_idx = np.unique(annotator, return_inverse=True)
        multi = int((np.bincount(position, minlength=len(items)) >= 2).sum()) if items else 0
        if multi < DS_MIN_ITEMS or len(workers) < 2 or len(labels) < 2:
            continue
        ds = cons.dawid_skene(position, worker_idx, label, len(items), len(workers), len(labels))
        confusion = ds.confusion.astype(np.float64)
        models[control.name] = ChoiceModel(
            labels=labels, priors=np.asarray(ds.priors, dtype=np.float64).tolist(),
            confusion={int(w): confusion[i].tolist() for i, w in enumerate(workers)},
            typical=confusion.mean(axis=0).tolist())
        accuracy = qual.confusion_accuracy(confusion, ds.priors)
        fits[control.name] = {
            "iterations": ds.iterations, "converged": ds.converged, "log_likelihood": _finite(ds.log_likelihood),
            "n_answers": int(label.size), "n_items": len(items), "n_annotators": len(workers),
            "accuracy": {int(w): float(accuracy[i]) for i, w in enumerate(workers)},
            "answers": {int(w): int(n) for w, n in zip(workers, np.bincount(worker_idx, minlength=len(workers)))},
        }
    return models, fits


def _ds_details(models: dict[str, ChoiceModel], fits: dict[str, dict]) -> dict[int, dict]:
    """Per annotator, per control: the confusion matrix and what it says."""
    out: dict[int, dict] = defaultdict(dict)
    for name, model in models.items():
        for annotator_id, matrix in model.confusion.items():
            out[annotator_id][name] = {
                "labels": model.labels, "confusion": matrix,
                "accuracy": fits[name]["accuracy"][annotator_id], "n_answers": fits[name]["answers"][annotator_id],
                "explanation": (f"chance of a right answer {fits[name]['accuracy'][annotator_id]:.2f}, estimated "
                                f"by Dawid-Skene from {fits[name]['answers'][annotator_id]} answers on "
                                f"{name}; confusion rows are the true label, columns the label given"),
            }
    return out


def _stored_models(session: Session, project_id: int) -> dict[str, ChoiceModel]:
    """The models `reestimate_project` stored, to score new micro-tasks the same way."""
    stored = session.scalar(select(ProjectScore.details).where(ProjectScore.project_id == project_id)) or {}
    fitted = stored.get("dawid_skene") or {}
    if not fitted:
        return {}
    confusion: dict[str, dict[int, list]] = defaultdict(dict)
    for annotator_id, details in session.execute(select(AnnotatorScore.annotator_id, AnnotatorScore.details)
                                                 .where(AnnotatorScore.project_id == project_id)):
        for name, ds in (details or {}).get("dawid_skene", {}).items():
            confusion[name][annotator_id] = ds["confusion"]
    return {name: ChoiceModel(labels=m["labels"], priors=m["priors"], confusion=confusion.get(name, {}),
                              typical=m["typical"]) for name, m in fitted.items()}


def _votes(config: LabelConfig, batch: _Batch, models: dict[str, ChoiceModel]) -> dict[int, dict[str, Vote]]:
    """Per item, per modelled control: the Dawid-Skene consensus (one E-step for the batch)."""
    votes: dict[int, dict[str, Vote]] = defaultdict(dict)
    for name, model in models.items():
        items, position, annotator, label = _choice_answers(config, batch, name, model.labels)
        if not items:
            continue
        posterior = model.posterior(position, annotator, label, len(items))
        best = posterior.argmax(axis=1)
        for item_id, b, p in zip(items, best, posterior.max(axis=1)):
            votes[item_id][name] = Vote(model.labels[int(b)], float(p))
    return votes


# --------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------


def _upsert(session: Session, model: type, keys: list[str], values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE: safe when two runs write the same row."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(model).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=keys,
                                      set_={k: stmt.excluded[k] for k in values if k not in keys})
    session.execute(stmt)


def _finite(x: float, default: float = 0.0) -> float:
    # JSON (and so JSONB) has no NaN.
    return float(x) if np.isfinite(x) else default


def _score(session: Session, project: Project, config: LabelConfig, batch: _Batch,
           models: dict[str, ChoiceModel]) -> int:
    """Write the ItemScores and AssignmentScores of a batch; returns the number of items scored."""
    now = utcnow()
    votes = _votes(config, batch, models)
    counts: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for item_id, answers in batch.answers.items():
        item = item_consensus(config, answers, iou=project.iou_threshold, votes=votes.get(item_id))
        _upsert(session, ItemScore, ["item_id"], dict(
            item_id=item_id, project_id=project.id, consensus=item.consensus,
            confidence=_finite(item.confidence), agreement=_finite(item.agreement, 1.0),
            n_annotators=item.n_annotators, method=item.method,
            flagged=bool(item.confidence < project.confidence_target), updated_at=now))
        for part in item.controls:
            for assignment_id, agrees in part.agrees.items():
                tally = counts[assignment_id][part.control]
                tally[0] += int(agrees)
                tally[1] += 1
    for assignment_id in batch.assignments:
        checks = [(item_id, gold.compare(result, batch.gold[item_id], project.iou_threshold))
                  for item_id, result in batch.gold_answers.get(assignment_id, []) if item_id in batch.gold]
        by_control = {name: {"agreed": a, "compared": c} for name, (a, c) in sorted(counts[assignment_id].items())}
        agreed = sum(v["agreed"] for v in by_control.values())
        compared = sum(v["compared"] for v in by_control.values())
        right = sum(check.right for _, check in checks)
        quality = qual.annotator_quality(qual.gold_accuracy(right, len(checks)),
                                         qual.consensus_agreement(agreed, compared))
        details = {"quality": quality.details(), "explanation": quality.explain(), "controls": by_control,
                   "gold_checks": [{"item_id": i, "right": c.right, "why": c.why} for i, c in checks]}
        _upsert(session, AssignmentScore, ["assignment_id"], dict(
            assignment_id=assignment_id, quality=float(quality.score),
            agreement=agreed / compared if compared else None, gold_right=right, gold_total=len(checks),
            details=details, computed_at=now))
    return len(batch.answers)


@dataclass(frozen=True)
class _Quality:
    score: float
    evidence: int  # gold items and compared items behind the score
    explanation: str


def _refresh_annotators(session: Session, project: Project, annotator_ids: set[int],
                        ds: dict[int, dict] | None = None) -> dict[int, _Quality]:
    """Recompute each annotator's project quality over the window of their latest scored assignments.

    ``ds`` replaces the Dawid-Skene details (from `reestimate_project`);
    without it the stored ones are kept.
    """
    now = utcnow()
    out: dict[int, _Quality] = {}
    for annotator_id in sorted(annotator_ids):
        rows = session.execute(
            select(AssignmentScore.gold_right, AssignmentScore.gold_total, AssignmentScore.details)
            .join(Assignment, Assignment.id == AssignmentScore.assignment_id)
            .where(Assignment.annotator_id == annotator_id, Assignment.project_id == project.id)
            .order_by(Assignment.submitted_at.desc(), Assignment.id.desc()).limit(WINDOW_ASSIGNMENTS)).all()
        gold_right = sum(r.gold_right for r in rows)
        gold_total = sum(r.gold_total for r in rows)
        controls = [c for r in rows for c in (r.details or {}).get("controls", {}).values()]
        agreed = sum(c["agreed"] for c in controls)
        compared = sum(c["compared"] for c in controls)
        quality = qual.annotator_quality(qual.gold_accuracy(gold_right, gold_total),
                                         qual.consensus_agreement(agreed, compared))
        if ds is None:
            old = session.scalar(select(AnnotatorScore.details).where(
                AnnotatorScore.annotator_id == annotator_id, AnnotatorScore.project_id == project.id)) or {}
            fitted = old.get("dawid_skene", {})
        else:
            fitted = ds.get(annotator_id, {})
        details = {"quality": quality.details(), "explanation": quality.explain(),
                   "window": {"assignments": len(rows), "limit": WINDOW_ASSIGNMENTS}, "dawid_skene": fitted}
        _upsert(session, AnnotatorScore, ["annotator_id", "project_id"], dict(
            annotator_id=annotator_id, project_id=project.id, quality=float(quality.score),
            agreement=agreed / compared if compared else None, gold_right=gold_right, gold_total=gold_total,
            n_items=gold_total + compared, details=details, updated_at=now))
        out[annotator_id] = _Quality(float(quality.score), gold_total + compared, quality.explain())
    return out


def _write_project_score(session: Session, project: Project, config: LabelConfig, batch: _Batch,
                         models: dict[str, ChoiceModel], fits: dict[str, dict]) -> None:
    """Krippendorff's alpha (nominal, first single-choice control) and the fitted models' priors."""
    alpha = low = high = None
    alpha_details: dict[str, Any] = {}
    choice = next((c for c in scored_controls(config) if control_kind(config, c) == "choice"), None)
    if choice is not None:
        labels = _vocabulary(config, batch, choice)
        items, position, annotator, label = _choice_answers(config, batch, choice.name, labels)
        workers, worker_idx = np.unique(annotator, return_inverse=True)
        if items and len(items) * len(workers) <= ALPHA_MAX_CELLS:
            data = agr.reliability_matrix(position, worker_idx, label, len(items), len(workers))
            interval = agr.alpha_bootstrap(data, "nominal")
            alpha, low, high = (None if not np.isfinite(v) else float(v)
                                for v in (interval.alpha, interval.low, interval.high))
            alpha_details = {"control": choice.name, "metric": "nominal", "n_units": interval.n_units,
                             "n_values": interval.n_values, "n_boot": interval.n_boot,
                             "confidence": interval.confidence}
    fitted = {name: {"labels": m.labels, "priors": m.priors, "typical": m.typical,
                     **{k: v for k, v in fits[name].items() if k not in ("accuracy", "answers")}}
              for name, m in models.items()}
    _upsert(session, ProjectScore, ["project_id"], dict(
        project_id=project.id, alpha=alpha, alpha_low=low, alpha_high=high,
        details={"alpha": alpha_details, "dawid_skene": fitted}, updated_at=utcnow()))


# --------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------


def _decide(session: Session, project: Project, batch: _Batch,
            qualities: dict[int, _Quality]) -> tuple[list[int], list[int]]:
    """Approve and pay the pending assignments whose annotator's quality meets the threshold."""
    approved, pending = [], []
    threshold = project.approve_quality_threshold
    for a in batch.assignments.values():
        if a.decision != "pending" or a.annotator_id not in qualities:
            continue
        q = qualities[a.annotator_id]
        decision = pay_rules.decide(q.score, threshold, n_evidence=q.evidence)
        assignment = session.get(Assignment, a.id)
        if decision.approve:
            if pay.approve(session, assignment, project, batch.micro_tasks[a.micro_task_id], rule=decision.rule,
                           reason=f"{decision.explain()}; quality {q.explanation}"):
                pay.pay_quality_bonus(session, assignment, project, q.score)
                approved.append(a.id)
            continue
        # Not a rejection: the requester reviews it, or the review window approves it.
        session.execute(update(Assignment).where(Assignment.id == a.id, Assignment.decision == "pending").values(
            decision_rule=f"quality {q.score:.2f} below the project's {threshold:.2f}",
            decision_reason=f"waiting for the requester's review: quality {q.explanation}"))
        pending.append(a.id)
    return approved, pending


def _pay_qualification(session: Session, project: Project, mt: MicroTask) -> list[int]:
    """Qualification work is paid whether or not it passed."""
    approved = []
    for assignment in session.scalars(select(Assignment).where(
            Assignment.micro_task_id == mt.id, Assignment.status == "submitted",
            Assignment.decision == "pending").order_by(Assignment.id)).all():
        if pay.approve(session, assignment, project, mt, rule=RULE_QUALIFICATION,
                       reason="qualification work is paid whether or not it passes"):
            approved.append(assignment.id)
    return approved


def live_project_ids() -> list[int]:
    """The projects the periodic re-estimation and top-ups visit."""
    ids = list(db.session.scalars(select(Project.id).where(Project.status == "live", Project.archived_at.is_(None))))
    db.session.rollback()
    return ids
