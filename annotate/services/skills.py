"""Skills: named measures (0-100) of what an annotator can do, the levels
annotators have in them with the evidence behind each, the skills projects
ask for, and operators' adjustments.

- Requesters and operators define skills; the platform keeps one per config
  kind ("Text classification", ...), created on demand.
- A level comes from the evidence on the projects linked to its skill: the
  skill's ProjectSkill rows and, for a platform skill, every project of its
  kind. Per project the evidence is the annotator's AnnotatorScore (gold
  right/total and agreement with the consensus over their latest scored
  assignments, which include the qualification), or the qualification
  result alone before any of their regular work is scored. The formula,
  a Beta posterior, is in `annotate.scoring.skills`.
- Passing a project's qualification lifts each skill the project asks for to
  at least the project's minimum level (a floor, said in the evidence).
- An operator adjusts a level only with a written reason. The adjustment is
  kept as an offset in the evidence (``evidence["adjustment"]["offset"]``)
  and added to every later recomputation, so it survives them.
- Every change of level writes a SkillLevelChange and is pushed to the
  dispatch state in Redis, so eligibility follows at the next request for work.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy import delete, distinct, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


from ..extensions import db
from ..labelconfig import KINDS
from ..models import (AnnotatorScore, Assignment, AssignmentScore, MicroTask, Project, ProjectSkill, Skill,
                      SkillLevel, SkillLevelChange, User, utcnow)
from ..queue import enqueue
from ..scoring import skills as formula
from . import audit, projects, work
from .accounts import require_operator
from .errors import Conflict, Forbidden, Invalid, NotFound

HISTORY_LIMIT = 20  # changes shown per level
LIST_LIMIT = 200


def platform_name(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


@dataclass(frozen=True)
class SkillView:
    id: int
    name: str
    description: str
    config_kind: str | None  # set for the platform's skills
    version: int
    annotators: int = 0  # with a level in it
    projects: int = 0  # asking for it


@dataclass(frozen=True)
class ChangeView:
    level: int
    words: str
    reason: str | None
    changed_by: str | None  # None: recomputed from evidence
    at: dt.datetime


@dataclass(frozen=True)
class LevelView:
    skill_id: int
    skill: str
    config_kind: str | None
    level: int
    confidence: float
    words: str
    evidence: dict[str, Any]
    updated_at: dt.datetime
    history: list[ChangeView] = field(default_factory=list)


@dataclass(frozen=True)
class AnnotatorLevel:
    annotator_id: int
    name: str
    email: str
    level: int
    confidence: float
    words: str
    offset: int  # the operator's adjustment, 0 when none
    updated_at: dt.datetime


# --- words --------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe(level: int, evidence: dict[str, Any]) -> str:
    """The level and its evidence in a sentence, e.g. "87: 52 gold items on 3 projects, 45 right;
    agreed with consensus on 120 of 140 items"."""
    gold_total, compared = evidence.get("gold_total", 0), evidence.get("compared", 0)
    on = f" on {_plural(evidence.get('projects', 0), 'project')}"
    parts = []
    if gold_total:
        parts.append(f"{_plural(gold_total, 'gold item')}{on}, {evidence['gold_right']} right")
    if compared:
        parts.append(f"agreed with consensus on {evidence['agreed']} of {_plural(compared, 'item')}"
                     f"{'' if gold_total else on}")
    if not parts:
        parts.append("no evidence yet, so a middling start")
    granted = evidence.get("granted")
    if granted:
        titles = ", ".join(repr(p["title"]) for p in granted["projects"])
        parts.append(f"at least {granted['level']} for passing the qualification of {titles}")
    adjustment = evidence.get("adjustment")
    if adjustment and adjustment.get("offset"):
        parts.append(f"{adjustment['offset']:+d} by an operator: {adjustment['reason']}")
    return f"{level}: " + "; ".join(parts)


# --- skills ---------------------------------------------------------------------------


def _insert(session: Session):
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def _ensure_platform_skills(session: Session, kinds: Iterable[str]) -> None:
    wanted = {k for k in kinds if k in KINDS and k != "other"}
    missing = wanted - set(session.scalars(select(Skill.config_kind).where(Skill.config_kind.in_(wanted))))
    if missing:
        now = utcnow()
        session.execute(_insert(session)(Skill).values([
            {"name": platform_name(k), "config_kind": k, "version": 1, "created_at": now,
             "description": f"How well the annotator does {k.replace('_', ' ')} work, on every project of that kind"}
            for k in sorted(missing)]).on_conflict_do_nothing())


def list_skills() -> list[SkillView]:
    """Every skill, the platform's for each config kind included (made here the first time)."""
    session = db.session
    if session.scalar(select(func.count(Skill.id)).where(Skill.config_kind.is_not(None))) < len(KINDS) - 1:
        with db.transaction() as session:
            _ensure_platform_skills(session, KINDS)
    annotators = dict(session.execute(select(SkillLevel.skill_id, func.count()).group_by(SkillLevel.skill_id)).all())
    used = dict(session.execute(select(ProjectSkill.skill_id, func.count()).group_by(ProjectSkill.skill_id)).all())
    out = [SkillView(s.id, s.name, s.description, s.config_kind, s.version, annotators.get(s.id, 0), used.get(s.id, 0))
           for s in session.scalars(select(Skill).order_by(Skill.config_kind.is_not(None), Skill.name))]
    session.rollback()
    return out


def get_skill(skill_id: int) -> SkillView:
    skill = db.session.get(Skill, skill_id)
    if skill is None:
        raise NotFound(f"no skill {skill_id}")
    return SkillView(skill.id, skill.name, skill.description, skill.config_kind, skill.version)


def create_skill(actor_id: int, name: Any, description: Any = "") -> SkillView:
    """A named skill that projects can ask for (requesters and operators)."""
    if not isinstance(name, str) or not name.strip():
        raise Invalid("name is required: what the skill measures, e.g. Medical terminology", field="name")
    name = " ".join(name.split())
    if len(name) > 80:
        raise Invalid("name must be at most 80 characters", field="name")
    if not isinstance(description, str) or len(description) > 5000:
        raise Invalid("description must be text of at most 5000 characters", field="description")
    if name.lower() in {platform_name(k).lower() for k in KINDS}:
        raise Conflict(f"{name!r} is the name of the platform's skill for that kind of work: pick it, "
                       f"or give yours another name", field="name")
    with db.transaction() as session:
        actor = session.get(User, actor_id)
        if actor is None or not (actor.is_requester or actor.is_operator):
            raise Forbidden("only requesters and operators define skills")
        if session.scalar(select(Skill.id).where(func.lower(Skill.name) == name.lower())):
            raise Conflict(f"there is a skill named {name!r} already", field="name")
        skill = Skill(name=name, description=description.strip(), created_by_id=actor_id)
        session.add(skill)
        session.flush()
        audit.record(session, actor_id=actor_id, action="create_skill", target_type="skill", target_id=skill.id,
                     name=name)
        return SkillView(skill.id, skill.name, skill.description, None, skill.version)


# --- what projects ask for ----------------------------------------------------------------


def project_skills(user_id: int, project_id: int) -> list[dict[str, Any]]:
    """The skills a project asks for, with their minimum levels (its team's requesters and operators)."""
    session = db.session
    projects.visible_project(session, session.get(User, user_id), project_id)
    rows = session.execute(select(ProjectSkill.skill_id, Skill.name, Skill.config_kind, ProjectSkill.min_level)
                           .join(Skill, Skill.id == ProjectSkill.skill_id)
                           .where(ProjectSkill.project_id == project_id).order_by(Skill.name)).all()
    session.rollback()
    return [{"skill_id": r.skill_id, "name": r.name, "config_kind": r.config_kind, "min_level": r.min_level}
            for r in rows]


def _whole(value: Any, where: str, name: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{where}{name} must be a whole number from {low} to {high}, not {value!r}", field=name)
    return value


def _check_project_skills(raw: Any) -> dict[int, int]:
    if not isinstance(raw, list):
        raise Invalid("skills must be a list of {skill_id, min_level}", field="skills")
    wanted: dict[int, int] = {}
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise Invalid(f"skill {index} must be an object with a skill_id and a min_level", field="skills")
        skill_id = _whole(entry.get("skill_id"), f"skill {index}: ", "skill_id", 1, 2**31 - 1)
        if skill_id in wanted:
            raise Invalid(f"skill {index}: skill {skill_id} is listed twice", field="skill_id")
        wanted[skill_id] = _whole(entry.get("min_level", 0), f"skill {index}: ", "min_level", 0, 100)
    return wanted


def set_project_skills(user_id: int, project_id: int, raw: Any) -> list[dict[str, Any]]:
    """Replace the skills a project asks for. A live project's filter applies from the next
    request for work; the levels of those who worked on it are recomputed in the background."""
    wanted = _check_project_skills(raw)
    with db.transaction() as session:
        project = projects._editable_project(session, session.get(User, user_id), project_id)
        known = set(session.scalars(select(Skill.id).where(Skill.id.in_(wanted))))
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise Invalid(f"there is no skill {unknown[0]}", field="skill_id")
        before = dict(session.execute(select(ProjectSkill.skill_id, ProjectSkill.min_level)
                                      .where(ProjectSkill.project_id == project_id)).all())
        session.execute(delete(ProjectSkill).where(ProjectSkill.project_id == project_id))
        session.add_all(ProjectSkill(project_id=project_id, skill_id=s, min_level=m) for s, m in wanted.items())
        audit.record(session, actor_id=user_id, action="set_project_skills", target_type="project",
                     target_id=project_id, skills={str(s): m for s, m in sorted(wanted.items())})
        live = project.status == "live" and project.archived_at is None
    if live:
        work.dispatcher().set_project(work._project_state(db.session.get(Project, project_id)))
        db.session.rollback()
    if before != wanted:  # other skills draw on its evidence, or a qualification grants other minimums
        enqueue("tasks.skills.recompute_project_levels", project_id, job_id=f"skills-project-{project_id}")
    return project_skills(user_id, project_id)


# --- levels ----------------------------------------------------------------------------------


def _history(session: Session, level_ids: list[int]) -> dict[int, list[ChangeView]]:
    out: dict[int, list[ChangeView]] = defaultdict(list)
    if not level_ids:
        return out
    for change, by in session.execute(
            select(SkillLevelChange, User.name).outerjoin(User, User.id == SkillLevelChange.changed_by_id)
            .where(SkillLevelChange.skill_level_id.in_(level_ids)).order_by(SkillLevelChange.id.desc())):
        if len(out[change.skill_level_id]) < HISTORY_LIMIT:
            out[change.skill_level_id].append(ChangeView(change.level, (change.evidence or {}).get("words", ""),
                                                         change.reason, by, change.created_at))
    return out


def levels_of(annotator_id: int) -> list[LevelView]:
    """An annotator's levels, best first, each in words with its confidence and history."""
    session = db.session
    rows = session.execute(select(SkillLevel, Skill).join(Skill, Skill.id == SkillLevel.skill_id)
                           .where(SkillLevel.annotator_id == annotator_id)
                           .order_by(SkillLevel.level.desc(), Skill.name)).all()
    history = _history(session, [level.id for level, _skill in rows])
    out = [LevelView(skill.id, skill.name, skill.config_kind, level.level, level.confidence,
                     (level.evidence or {}).get("words") or describe(level.level, level.evidence or {}),
                     dict(level.evidence or {}), level.updated_at, history.get(level.id, []))
           for level, skill in rows]
    session.rollback()
    return out


def annotator_levels(actor_id: int, annotator_id: int) -> list[LevelView]:
    """An annotator's levels, for operators."""
    require_operator(db.session, actor_id)
    if db.session.get(User, annotator_id) is None:
        raise NotFound(f"no user {annotator_id}")
    return levels_of(annotator_id)


def skill_levels(actor_id: int, skill_id: int, query: str = "", limit: int = LIST_LIMIT) -> list[AnnotatorLevel]:
    """Annotators' levels in one skill, best first (operators)."""
    session = db.session
    require_operator(session, actor_id)
    get_skill(skill_id)
    stmt = (select(SkillLevel, User.name, User.email).join(User, User.id == SkillLevel.annotator_id)
            .where(SkillLevel.skill_id == skill_id).order_by(SkillLevel.level.desc(), User.id).limit(limit))
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(User.email).like(pattern), func.lower(User.name).like(pattern)))
    out = [AnnotatorLevel(level.annotator_id, name, email, level.level, level.confidence,
                          (level.evidence or {}).get("words", ""),
                          int(((level.evidence or {}).get("adjustment") or {}).get("offset", 0)), level.updated_at)
           for level, name, email in session.execute(stmt)]
    session.rollback()
    return out


def find_annotator(who: str) -> int:
    """The annotator an operator names by id or email."""
    who = (who or "").strip()
    if not who:
        raise Invalid("name the annotator by id or email", field="annotator")
    user_id = int(who) if who.isdigit() else db.session.scalar(
        select(User.id).where(func.lower(User.email) == who.lower()))
    if user_id is None or db.session.get(User, user_id) is None:
        raise Invalid(f"there is no annotator {who!r}", field="annotator")
    return user_id


def adjust_level(actor_id: int, annotator_id: int, skill_id: int, level: Any, reason: Any) -> LevelView:
    """An operator sets a level, with a written reason that is logged and shown to the annotator.

    Stored as an offset from the level the evidence gives, so later
    recomputations keep it: the level moves with new evidence, the
    adjustment stays.
    """
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise Invalid("reason is required: say why the level changes; it is logged and the annotator reads it",
                      field="reason")
    level = _whole(level, "", "level", 0, 100)
    with db.transaction() as session:
        require_operator(session, actor_id)
        if session.get(User, annotator_id) is None:
            raise NotFound(f"no user {annotator_id}")
        skill = session.get(Skill, skill_id)
        if skill is None:
            raise NotFound(f"no skill {skill_id}")
        old = session.scalar(select(SkillLevel.level).where(SkillLevel.annotator_id == annotator_id,
                                                            SkillLevel.skill_id == skill_id))
        adjustment = _Adjustment(annotator_id, skill_id, level, reason[:1000], actor_id)
        result = _recompute(session, _only([annotator_id]), adjustment)
        audit.record(session, actor_id=actor_id, action="adjust_skill_level", target_type="user",
                     target_id=annotator_id, reason=reason, skill_id=skill_id, skill=skill.name,
                     level_from=old, level_to=level, offset=result.offset)
    _push(result.changed_annotators | {annotator_id})
    return next(v for v in levels_of(annotator_id) if v.skill_id == skill_id)


def recompute_levels(annotator_ids: Iterable[int] | None = None, project_id: int | None = None) -> dict[str, int]:
    """Recompute levels from evidence: of these annotators, of the annotators who worked on
    the project, or of everyone. Set-based: a few queries whatever the number of annotators.
    Idempotent; changed levels are pushed to Redis."""
    if annotator_ids is not None:
        annotator_ids = sorted(set(annotator_ids))
        if not annotator_ids:
            return {"levels": 0, "changed": 0, "annotators": 0}
        who = _only(annotator_ids)
    elif project_id is not None:
        worked = select(Assignment.annotator_id).where(Assignment.project_id == project_id,
                                                       Assignment.status == "submitted")
        who = lambda column: column.in_(worked)  # noqa: E731
    else:
        who = lambda column: sa.true()  # noqa: E731
    for attempt in (1, 2):
        try:
            with db.transaction() as session:
                result = _recompute(session, who)
            break
        except IntegrityError:
            # Another recomputation inserted one of these levels first: the second pass updates it.
            if attempt == 2:
                raise
    _push(result.changed_annotators)
    return {"levels": result.levels, "changed": result.changed, "annotators": len(result.changed_annotators)}


def qualification_scored(annotator_id: int, project_id: int) -> dict[str, int]:
    """After a submit of `project_id`'s qualification: its gold counts as evidence, and a
    pass lifts the skills the project asks for to at least their minimum levels. All the
    annotator's levels are recomputed, as the project may count for several skills."""
    return recompute_levels([annotator_id])


def recompute_micro_task(micro_task_id: int) -> dict[str, int]:
    """The levels of a scored micro-task's annotators. A qualification micro-task is
    skipped: each submit of it recomputed its annotator's levels already."""
    session = db.session
    mt = session.get(MicroTask, micro_task_id)
    if mt is None:
        raise NotFound(f"no micro-task {micro_task_id}")
    ids = [] if mt.is_qualification else list(session.scalars(select(Assignment.annotator_id).where(
        Assignment.micro_task_id == micro_task_id, Assignment.status == "submitted")))
    session.rollback()
    return recompute_levels(ids)


def queue_recompute(actor_id: int) -> str:
    """Recompute every level in the background (operators); returns the RQ job id."""
    require_operator(db.session, actor_id)
    db.session.rollback()
    return enqueue("tasks.skills.recompute_all_levels", job_id="skills-all")


# --- the recomputation ------------------------------------------------------------------


def _only(ids: list[int]) -> Callable:
    return lambda column: column.in_(ids)


@dataclass(frozen=True)
class _Adjustment:
    annotator_id: int
    skill_id: int
    level: int
    reason: str
    actor_id: int


@dataclass
class _Result:
    levels: int = 0
    changed: int = 0
    changed_annotators: set[int] = field(default_factory=set)
    offset: int | None = None  # of the adjustment, when there was one


def _links():
    """(project, skill) for every project whose evidence counts for a skill."""
    asked = select(ProjectSkill.project_id.label("project_id"), ProjectSkill.skill_id.label("skill_id"))
    by_kind = select(Project.id, Skill.id).join(Skill, Skill.config_kind == Project.config_kind)
    return sa.union(asked, by_kind).subquery("links")


def _evidence(session: Session, who: Callable) -> dict[tuple[int, int], tuple[int, ...]]:
    """(annotator, skill) -> (gold right, gold total, agreed, compared, projects), in one query."""
    compared = AnnotatorScore.n_items - AnnotatorScore.gold_total
    scored = select(AnnotatorScore.annotator_id.label("annotator_id"), AnnotatorScore.project_id.label("project_id"),
                    AnnotatorScore.gold_right.label("gold_right"), AnnotatorScore.gold_total.label("gold_total"),
                    func.coalesce(func.round(AnnotatorScore.agreement * compared), 0).label("agreed"),
                    compared.label("compared")).where(who(AnnotatorScore.annotator_id))
    has_score = select(AnnotatorScore.id).where(AnnotatorScore.annotator_id == Assignment.annotator_id,
                                                AnnotatorScore.project_id == Assignment.project_id).exists()
    qualification_only = (
        select(Assignment.annotator_id, Assignment.project_id, AssignmentScore.gold_right, AssignmentScore.gold_total,
               literal(0), literal(0))
        .join(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .where(MicroTask.is_qualification.is_(True), Assignment.status == "submitted", ~has_score,
               who(Assignment.annotator_id)))
    ev = sa.union_all(scored, qualification_only).subquery("evidence")
    links = _links()
    rows = session.execute(
        select(ev.c.annotator_id, links.c.skill_id, func.sum(ev.c.gold_right), func.sum(ev.c.gold_total),
               func.sum(ev.c.agreed), func.sum(ev.c.compared), func.count(distinct(ev.c.project_id)))
        .join(links, links.c.project_id == ev.c.project_id).group_by(ev.c.annotator_id, links.c.skill_id))
    return {(a, s): tuple(int(round(float(v or 0))) for v in rest) for a, s, *rest in rows}


def _grants(session: Session, who: Callable) -> dict[tuple[int, int], tuple[int, list[dict]]]:
    """(annotator, skill) -> (floor, projects) from passed qualifications of projects asking for the skill."""
    rows = session.execute(
        select(Assignment.annotator_id, ProjectSkill.skill_id, ProjectSkill.min_level, Project.id, Project.title,
               Project.qualification_min_accuracy, AssignmentScore.gold_right, AssignmentScore.gold_total)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .join(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
        .join(Project, Project.id == Assignment.project_id)
        .join(ProjectSkill, ProjectSkill.project_id == Project.id)
        .where(MicroTask.is_qualification.is_(True), Assignment.status == "submitted", who(Assignment.annotator_id))
        .order_by(Project.id))
    out: dict[tuple[int, int], tuple[int, list[dict]]] = {}
    for row in rows:
        # The rule dispatch uses, on the project's current settings.
        if not work._passes(row, row.gold_right, row.gold_total):
            continue
        floor, granted = out.get((row.annotator_id, row.skill_id), (0, []))
        granted.append({"id": row.id, "title": row.title, "min_level": row.min_level})
        out[(row.annotator_id, row.skill_id)] = (max(floor, row.min_level), granted)
    return out


def _digest(evidence: dict[str, Any]) -> str:
    """A fingerprint of a level's evidence: the same evidence, the same digest."""
    return hashlib.blake2b(orjson.dumps(evidence, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _recompute(session: Session, who: Callable, adjustment: _Adjustment | None = None) -> _Result:
    """Recompute the levels of the annotators `who` selects, and apply an operator's adjustment."""
    _ensure_platform_skills(session, session.scalars(select(Project.config_kind).distinct()))
    versions = dict(session.execute(select(Skill.id, Skill.version)).all())
    evidence, grants = _evidence(session, who), _grants(session, who)
    # Of the stored evidence only the operator's adjustment is read back (rarely there): whether
    # the rest changed is told by its digest. Decoding every level's document cost about a fifth
    # of a recomputation of everyone on PostgreSQL.
    existing_stmt = select(SkillLevel.id, SkillLevel.annotator_id, SkillLevel.skill_id, SkillLevel.level,
                           SkillLevel.confidence, SkillLevel.evidence_digest,
                           SkillLevel.evidence["adjustment"].label("adjustment")).where(who(SkillLevel.annotator_id))
    if session.get_bind().dialect.name == "postgresql":
        existing_stmt = existing_stmt.with_for_update()  # concurrent recomputations take turns
    existing = {(r.annotator_id, r.skill_id): r for r in session.execute(existing_stmt)}
    keys = sorted(evidence.keys() | grants.keys() | existing.keys()
                  | ({(adjustment.annotator_id, adjustment.skill_id)} if adjustment else set()))
    result = _Result(levels=len(keys))
    if not keys:
        return result
    counts = np.array([evidence.get(k, (0, 0, 0, 0, 0)) for k in keys], dtype=np.int64).reshape(len(keys), 5)
    computed, confidence = formula.levels(counts[:, 0], counts[:, 1], counts[:, 2], counts[:, 3])
    now = utcnow()
    floors = np.array([grants.get(k, (0,))[0] for k in keys], dtype=np.int64)
    kept = [dict(existing[k].adjustment or {}) if k in existing else {} for k in keys]
    target = (adjustment.annotator_id, adjustment.skill_id) if adjustment is not None else None
    if target is not None:
        i = keys.index(target)
        kept[i] = {"offset": adjustment.level - max(int(computed[i]), int(floors[i])), "reason": adjustment.reason,
                   "by": adjustment.actor_id, "at": now.isoformat()}
        result.offset = kept[i]["offset"]
    final = formula.final_levels(computed, floors, [k.get("offset", 0) for k in kept])
    inserts, updates, changes = [], [], []  # changes: (key, level, evidence, reason, by)
    for i, key in enumerate(keys):
        old = existing.get(key)
        floor, granted = grants.get(key, (0, []))
        reason, by = "recomputed from evidence", None
        if key == target:
            reason, by = adjustment.reason, adjustment.actor_id
        level = int(final[i])
        gr, gt, ag, co, n_projects = (int(v) for v in counts[i])
        ev: dict[str, Any] = {
            "gold_right": gr, "gold_total": gt, "agreed": ag, "compared": co, "projects": n_projects,
            "computed": int(computed[i]), "prior": {"right": formula.PRIOR_RIGHT, "total": formula.PRIOR_TOTAL},
            "gold_weight": formula.GOLD_WEIGHT, "skill_version": versions.get(key[1], 1)}
        if granted:
            ev["granted"] = {"level": floor, "projects": granted}
            if floor > int(computed[i]) and by is None:
                reason = "passed a qualification"
        if kept[i]:
            ev["adjustment"] = kept[i]
        ev["words"] = describe(level, ev)
        conf = round(float(confidence[i]), 4)
        digest = _digest(ev)
        values = {"level": level, "confidence": conf, "evidence": ev, "evidence_digest": digest, "updated_at": now}
        if old is None:
            inserts.append({"annotator_id": key[0], "skill_id": key[1], **values})
        elif level != old.level or by is not None:
            updates.append({"id": old.id, **values})
        elif digest != old.evidence_digest or conf != old.confidence:
            updates.append({"id": old.id, **values})
            continue  # the same level from more evidence: no change to record
        else:
            continue
        changes.append((key, level, ev, reason, by))
    ids = {k: r.id for k, r in existing.items()}
    if inserts:
        for row in session.execute(sa.insert(SkillLevel).returning(SkillLevel.id, SkillLevel.annotator_id,
                                                                   SkillLevel.skill_id), inserts):
            ids[(row.annotator_id, row.skill_id)] = row.id
    if updates:
        session.execute(update(SkillLevel), updates)
    if changes:
        session.execute(sa.insert(SkillLevelChange), [
            {"skill_level_id": ids[key], "level": level, "evidence": ev, "reason": reason, "changed_by_id": by,
             "created_at": now} for key, level, ev, reason, by in changes])
    result.changed = len(changes)
    result.changed_annotators = {key[0] for key, *_rest in changes}
    return result


# --- Redis --------------------------------------------------------------------------------


def _push(annotator_ids: set[int]) -> None:
    """SQL first, then what dispatch checks in the same step that hands out work."""
    if not annotator_ids:
        return
    work.dispatcher().set_annotators(work.annotator_states(annotator_ids))
    db.session.rollback()
