"""Scoring finished micro-tasks: consensus per item, quality per assignment
and annotator, and the automatic pay decision.

- `score_micro_task`: the background job run when a micro-task has its k
  submissions (and after a qualification submit).
- `reestimate_project`: Dawid-Skene over all the project's single-choice
  answers, then the same scoring of every finished micro-task with the
  fitted model; on a schedule and on demand. It streams the answers page by
  page and writes scores in batches.
- `extra_overlap_needed`: how many more annotators unsure micro-tasks need.

Scores are upserts and money goes through `annotate.services.pay` with
idempotency keys, so both jobs are safe to retry and to run concurrently.
The per-control consensus lives in `annotate.services.consensus`.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import String, Text, cast, or_, select, type_coerce, update
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
from .consensus import (ChoiceModel, ItemRow, Vote, choice_of, choices_only, control_kind, item_consensus,
                        items_consensus, scored_controls)
from .errors import NotFound

log = logging.getLogger(__name__)

# An annotator's quality is over their most recent scored assignments on the project.
WINDOW_ASSIGNMENTS = 100
# Dawid-Skene needs items with several answers to learn confusion matrices from.
DS_MIN_ITEMS = 20

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
        approved, pending = _decide(session, project, batch.assignments, qualities)
        summary.update(items=scored, assignments=len(batch.assignments), approved=approved, pending=pending)
    return summary


def reestimate_project(project_id: int) -> dict[str, Any]:
    """Dawid-Skene over all single-choice answers of the project, then re-score every finished micro-task.

    One `dawid_skene` call per single-choice control (over arrays of all
    answers) where there are at least `DS_MIN_ITEMS` items with two or more
    answers; the confusion matrices go to the AnnotatorScores and the class
    priors to the ProjectScore, with Krippendorff's alpha. Still-pending
    assignments are decided again with the new qualities. Idempotent.

    The answers are read a page of items at a time, twice (the labels into
    NumPy arrays for the fit, then the scores, written in batches), so memory
    grows with the number of assignments, not of answers; scores that come
    out unchanged are not rewritten (bench/reestimate.py).
    """
    with db.transaction() as session:
        project = session.scalar(select(Project).where(Project.id == project_id).with_for_update())
        if project is None:
            raise NotFound(f"no project {project_id}")
        config = parse_config(project.label_config)
        assignments = _assignments(session, MicroTask.project_id == project_id, MicroTask.status == "done",
                                   MicroTask.is_qualification.is_(False))
        # Two passes over the answers, a page of items at a time, so memory does not grow with
        # the project: the single-choice labels into arrays for Dawid-Skene, then the scores.
        choices = _choice_arrays(config, _pages(session, project_id, assignments))
        models, fits = _fit_models(choices)
        tally = _Tally()
        scored = sum(_score_items(session, project, config, page, models, tally)
                     for page in _pages(session, project_id, assignments))
        _score_assignments(session, project, list(assignments), tally)
        annotators = set(session.scalars(select(Assignment.annotator_id).distinct().join(AssignmentScore).where(
            Assignment.project_id == project_id)))
        qualities = _refresh_annotators(session, project, annotators, ds=_ds_details(models, fits))
        approved, pending = _decide(session, project, assignments, qualities)
        _write_project_score(session, project, config, choices, models, fits)
    return {"project_id": project_id, "items": scored, "assignments": len(assignments),
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
    """The submitted work of some finished micro-tasks (or of one page of their items)."""

    assignments: dict[int, Any] = field(default_factory=dict)  # id -> row
    answers: dict[int, list[tuple[int, list]]] = field(default_factory=dict)  # item -> [(assignment, result)]
    gold_answers: dict[int, list[tuple[int, list]]] = field(default_factory=dict)  # assignment -> [(item, result)]
    gold: dict[int, list] = field(default_factory=dict)  # gold item -> expected result


def _assignments(session: Session, *where: Any) -> dict[int, Any]:
    """Submitted assignments of the micro-tasks ``where`` selects: id -> (id, annotator, micro-task, decision)."""
    return {a.id: a for a in session.execute(
        select(Assignment.id, Assignment.annotator_id, Assignment.micro_task_id, Assignment.decision)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .where(Assignment.status == "submitted", *where).order_by(Assignment.id))}


def _add_answer(batch: _Batch, assignment_id: int, item_id: int, result: Any, is_gold: bool) -> None:
    if is_gold:
        batch.gold_answers.setdefault(assignment_id, []).append((item_id, result))
    else:
        batch.answers.setdefault(item_id, []).append((assignment_id, result))


def _load_gold(session: Session, batch: _Batch) -> None:
    gold_items = {item_id for answers in batch.gold_answers.values() for item_id, _ in answers}
    if gold_items:
        batch.gold = dict(session.execute(select(GoldAnswer.item_id, GoldAnswer.result)
                                          .where(GoldAnswer.item_id.in_(gold_items))).all())


def _load(session: Session, *where: Any) -> _Batch:
    """All the answers of a few micro-tasks (one micro-task's scoring)."""
    batch = _Batch(assignments=_assignments(session, *where))
    if not batch.assignments:
        return batch
    rows = session.execute(
        select(Annotation.assignment_id, Annotation.item_id, Annotation.result, Item.is_gold)
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .join(Item, Item.id == Annotation.item_id)
        .where(Assignment.status == "submitted", *where)
        .order_by(Annotation.item_id, Annotation.assignment_id))
    for assignment_id, item_id, result, is_gold in rows:
        _add_answer(batch, assignment_id, item_id, result, is_gold)
    _load_gold(session, batch)
    return batch


PAGE_ITEMS = 2000
PARSED_RESULTS = 4096  # distinct result texts kept parsed: answers repeat (as many as labels, for a choice)


def _pages(session: Session, project_id: int, assignments: dict[int, Any]) -> Iterator[_Batch]:
    """The answers of ``assignments``, a page of the project's items at a time (keyset by item id).

    Results are read as JSON text and each distinct text is parsed once
    (shared, read-only): a classification project has about as many
    distinct results as labels. Two indexed look-ups per page, with the
    assignments filtered in memory, rather than a join over all of them.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    as_text = cast(Annotation.result, Text) if postgres else type_coerce(Annotation.result, String)
    parsed: dict[str, Any] = {}
    connection = session.connection()
    after = 0
    while True:
        items = connection.execute(select(Item.id, Item.is_gold).where(Item.project_id == project_id, Item.id > after)
                                   .order_by(Item.id).limit(PAGE_ITEMS)).all()
        if not items:
            return
        first, after = items[0][0], items[-1][0]
        gold_flag = dict(items)
        batch = _Batch(assignments=assignments)
        for assignment_id, item_id, text_ in connection.execute(
                select(Annotation.assignment_id, Annotation.item_id, as_text)
                .where(Annotation.item_id >= first, Annotation.item_id <= after)
                .order_by(Annotation.item_id, Annotation.assignment_id)):
            is_gold = gold_flag.get(item_id)
            if is_gold is None or assignment_id not in assignments:
                continue
            result = parsed.get(text_) if text_.__class__ is str else text_
            if result is None:
                if len(parsed) >= PARSED_RESULTS:
                    parsed.clear()
                result = parsed[text_] = json.loads(text_)
            _add_answer(batch, assignment_id, item_id, result, is_gold)
        _load_gold(session, batch)
        yield batch


# --------------------------------------------------------------------------
# Dawid-Skene models
# --------------------------------------------------------------------------


def _choice_answers(config: LabelConfig, batch: _Batch, control_name: str, labels: list[str]):
    """Arrays (item position, annotator id, label index) of one single-choice control; unknown labels dropped."""
    code = {label: i for i, label in enumerate(labels)}
    items, positions, who, given = [], [], [], []
    read: dict[int, str | None] = {}  # answers may share parsed results: each is read once
    for item_id, answers in batch.answers.items():
        for assignment_id, result in answers:
            label = read.get(id(result), "")
            if label == "":
                label = read[id(result)] = choice_of([r for r in result or [] if isinstance(r, dict)
                                                      and r.get("from_name") == control_name])
            if label is None or label not in code:
                continue
            if not items or items[-1] != item_id:
                items.append(item_id)
            positions.append(len(items) - 1)
            who.append(batch.assignments[assignment_id].annotator_id)
            given.append(code[label])
    return items, np.array(positions, dtype=np.int64), np.array(who, dtype=np.int64), np.array(given, dtype=np.int64)


@dataclass
class _Choices:
    """All the answers to one single-choice control, as arrays: what Dawid-Skene and alpha take."""

    labels: list[str]  # the config's labels, then any others given, sorted
    position: NDArray[np.int64]  # dense item index, in item order
    annotator: NDArray[np.int64]  # annotator id
    label: NDArray[np.int64]  # index into labels
    n_items: int


def _choice_arrays(config: LabelConfig, pages: Iterable[_Batch]) -> dict[str, _Choices]:
    """One pass over the pages: every single-choice control's answers, in NumPy arrays.

    Memory is a few integers per answer; each page is dropped once read.
    """
    controls = [c for c in scored_controls(config) if control_kind(config, c) == "choice"]
    if not controls:
        return {}
    codes: dict[str, dict[str, int]] = {c.name: {label: i for i, label in enumerate(c.labels)} for c in controls}
    chunks: dict[str, list[tuple[NDArray, NDArray, NDArray]]] = {c.name: [] for c in controls}
    n_items = dict.fromkeys(codes, 0)
    for page in pages:
        for c in controls:
            code = codes[c.name]
            position, who, given = [], [], []
            last = None
            read: dict[int, str | None] = {}  # a page's answers share parsed results: each is read once
            for item_id, answers in page.answers.items():
                for assignment_id, result in answers:
                    label = read.get(id(result), "")
                    if label == "":
                        label = read[id(result)] = choice_of(
                            [r for r in result or () if isinstance(r, dict) and r.get("from_name") == c.name])
                    if label is None:
                        continue
                    if item_id != last:
                        last = item_id
                        n_items[c.name] += 1
                    position.append(n_items[c.name] - 1)
                    who.append(page.assignments[assignment_id].annotator_id)
                    given.append(code.setdefault(label, len(code)))
            if position:
                chunks[c.name].append((np.array(position, dtype=np.int64), np.array(who, dtype=np.int64),
                                       np.array(given, dtype=np.int64)))
    out = {}
    for c in controls:
        code = codes[c.name]
        labels = list(c.labels) + sorted(set(code) - set(c.labels))
        remap = np.array([labels.index(label) for label in code], dtype=np.int64)  # first seen -> final order
        parts = chunks[c.name]
        join = (lambda i: np.concatenate([p[i] for p in parts])) if parts else (lambda i: np.zeros(0, np.int64))
        out[c.name] = _Choices(labels, join(0), join(1), remap[join(2)] if parts else join(2), n_items[c.name])
    return out


def _fit_models(choices: dict[str, _Choices]) -> tuple[dict[str, ChoiceModel], dict[str, dict]]:
    """One Dawid-Skene fit per single-choice control that has enough answers."""
    models: dict[str, ChoiceModel] = {}
    fits: dict[str, dict] = {}
    for name, ch in choices.items():
        labels, position, label = ch.labels, ch.position, ch.label
        workers, worker_idx = np.unique(ch.annotator, return_inverse=True)
        multi = int((np.bincount(position, minlength=ch.n_items) >= 2).sum()) if ch.n_items else 0
        if multi < DS_MIN_ITEMS or len(workers) < 2 or len(labels) < 2:
            continue
        ds = cons.dawid_skene(position, worker_idx, label, ch.n_items, len(workers), len(labels))
        confusion = ds.confusion.astype(np.float64)
        models[name] = ChoiceModel(
            labels=labels, priors=np.asarray(ds.priors, dtype=np.float64).tolist(),
            confusion={int(w): confusion[i].tolist() for i, w in enumerate(workers)},
            typical=confusion.mean(axis=0).tolist())
        accuracy = qual.confusion_accuracy(confusion, ds.priors)
        fits[name] = {
            "iterations": ds.iterations, "converged": ds.converged, "log_likelihood": _finite(ds.log_likelihood),
            "n_answers": int(label.size), "n_items": ch.n_items, "n_annotators": len(workers),
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


UPSERT_ROWS = 1000  # rows per INSERT ... ON CONFLICT statement


def _upsert(session: Session, model: type, keys: list[str], values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE: safe when two runs write the same row."""
    _upsert_many(session, model, keys, [values])


# Columns that say when a row was written: a row whose other values are unchanged is left as it is.
_WRITTEN_AT = ("updated_at", "computed_at")


def _upsert_many(session: Session, model: type, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """`_upsert` of many rows (all with the same columns): one statement, sent in batches.

    A row whose values are all unchanged is not rewritten (nor its time):
    a scheduled re-estimation mostly finds the scores it wrote last time,
    and rewriting them costs more than computing them.
    """
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(model)
    table = model.__table__
    values = [k for k in rows[0] if k not in keys]
    changed = or_(*(table.c[k].is_distinct_from(stmt.excluded[k]) for k in values if k not in _WRITTEN_AT))
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in values}, where=changed)
    connection = session.connection()
    for at in range(0, len(rows), UPSERT_ROWS):
        connection.execute(stmt, rows[at:at + UPSERT_ROWS])


def _finite(x: float, default: float = 0.0) -> float:
    # JSON (and so JSONB) has no NaN.
    return float(x) if np.isfinite(x) else default


@dataclass
class _Tally:
    """What the assignments' scores are made of, gathered item page by item page."""

    # assignment -> control -> [agreed, compared]
    counts: dict[int, dict[str, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0, 0])))
    checks: dict[int, list[tuple[int, gold.GoldCheck]]] = field(default_factory=lambda: defaultdict(list))


def _score(session: Session, project: Project, config: LabelConfig, batch: _Batch,
           models: dict[str, ChoiceModel]) -> int:
    """Write the ItemScores and AssignmentScores of a batch; returns the number of items scored."""
    tally = _Tally()
    scored = _score_items(session, project, config, batch, models, tally)
    _score_assignments(session, project, list(batch.assignments), tally)
    return scored


def _score_items(session: Session, project: Project, config: LabelConfig, batch: _Batch,
                 models: dict[str, ChoiceModel], tally: _Tally) -> int:
    """Write the ItemScores of a batch and add its comparisons to ``tally``; returns the items scored."""
    now = utcnow()
    votes = _votes(config, batch, models)
    if choices_only(config):  # the same consensus as item_consensus, many items at once
        items = items_consensus(config, list(batch.answers.items()), votes)
    else:
        items = []
        for item_id, answers in batch.answers.items():
            item = item_consensus(config, answers, iou=project.iou_threshold, votes=votes.get(item_id))
            items.append(ItemRow(item_id, item.consensus, item.confidence, item.agreement, item.n_annotators,
                                 item.method, {part.control: part.tallies() for part in item.controls}))
    rows = []
    for item in items:
        rows.append(dict(
            item_id=item.item_id, project_id=project.id, consensus=item.consensus,
            confidence=_finite(item.confidence), agreement=_finite(item.agreement, 1.0),
            n_annotators=item.n_annotators, method=item.method,
            flagged=bool(item.confidence < project.confidence_target), updated_at=now))
        for control, by_key in item.tallies.items():
            for assignment_id, (agreed, compared) in by_key.items():
                counts = tally.counts[assignment_id][control]
                counts[0] += agreed
                counts[1] += compared
    _upsert_many(session, ItemScore, ["item_id"], rows)
    for assignment_id, answers in batch.gold_answers.items():
        tally.checks[assignment_id].extend(
            (item_id, gold.compare(result, batch.gold[item_id], project.iou_threshold))
            for item_id, result in answers if item_id in batch.gold)
    return len(batch.answers)


def _pick(numbers: dict[str, Any], n: int) -> dict[str, Any]:
    """Entry ``n`` of every list in a details() dict of array-valued scores."""
    return {k: _pick(v, n) if isinstance(v, dict) else v[n] if isinstance(v, list) else v
            for k, v in numbers.items()}


def _score_assignments(session: Session, project: Project, assignment_ids: list[int], tally: _Tally) -> None:
    now = utcnow()
    if not assignment_ids:
        return
    by_control = [{name: {"agreed": a, "compared": c} for name, (a, c) in sorted(tally.counts.get(i, {}).items())}
                  for i in assignment_ids]
    agreed = np.array([sum(v["agreed"] for v in b.values()) for b in by_control], dtype=np.int64)
    compared = np.array([sum(v["compared"] for v in b.values()) for b in by_control], dtype=np.int64)
    checks = [tally.checks.get(i, []) for i in assignment_ids]
    right = np.array([sum(check.right for _, check in c) for c in checks], dtype=np.int64)
    n_gold = np.array([len(c) for c in checks], dtype=np.int64)
    # One call for all the assignments: the Beta quantiles are the costly part, vectorised.
    qualities = qual.annotator_quality(qual.gold_accuracy(right, n_gold), qual.consensus_agreement(agreed, compared))
    numbers = qualities.details()  # arrays as lists, once: picking from them beats .item(n) per assignment
    rows: list[dict[str, Any]] = []
    for n, assignment_id in enumerate(assignment_ids):
        if len(rows) >= UPSERT_ROWS:  # written as they are made: a project's explanations are large
            _upsert_many(session, AssignmentScore, ["assignment_id"], rows)
            rows = []
        picked = _pick(numbers, n)
        quality = qual.AnnotatorQuality(**{**picked, "gold": qual.GoldAccuracy(**picked["gold"]),
                                           "agreement": qual.ConsensusAgreement(**picked["agreement"])})
        details = {"quality": picked, "explanation": quality.explain(), "controls": by_control[n],
                   "gold_checks": [{"item_id": i, "right": c.right, "why": c.why} for i, c in checks[n]]}
        rows.append(dict(
            assignment_id=assignment_id, quality=float(quality.score),
            agreement=int(agreed[n]) / int(compared[n]) if compared[n] else None, gold_right=int(right[n]),
            gold_total=int(n_gold[n]), details=details, computed_at=now))
    _upsert_many(session, AssignmentScore, ["assignment_id"], rows)


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


def _write_project_score(session: Session, project: Project, config: LabelConfig, choices: dict[str, _Choices],
                         models: dict[str, ChoiceModel], fits: dict[str, dict]) -> None:
    """Krippendorff's alpha (nominal, first single-choice control) and the fitted models' priors."""
    alpha = low = high = None
    alpha_details: dict[str, Any] = {}
    choice = next((c for c in scored_controls(config) if control_kind(config, c) == "choice"), None)
    if choice is not None:
        ch = choices[choice.name]
        if ch.n_items:
            _, worker_idx = np.unique(ch.annotator, return_inverse=True)
            interval = agr.nominal_alpha_from_answers(ch.position, worker_idx, ch.label, ch.n_items)
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


def _decide(session: Session, project: Project, assignments: dict[int, Any],
            qualities: dict[int, _Quality]) -> tuple[list[int], list[int]]:
    """Approve and pay the pending assignments whose annotator's quality meets the threshold."""
    approved, pending = [], []
    threshold = project.approve_quality_threshold
    for a in assignments.values():
        if a.decision != "pending" or a.annotator_id not in qualities:
            continue
        q = qualities[a.annotator_id]
        decision = pay_rules.decide(q.score, threshold, n_evidence=q.evidence)
        assignment = session.get(Assignment, a.id)
        if decision.approve:
            if pay.approve(session, assignment, project, session.get(MicroTask, a.micro_task_id), rule=decision.rule,
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
