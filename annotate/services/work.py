"""Handing out work: publishing a project into micro-tasks, leasing them to
annotators, submits, skips, heartbeats, expiry and blocking.

The Redis side (tasks.dispatch) decides who gets which micro-task in one
atomic call; SQL records it in the same request and stays the system of
record. SQL is changed first and Redis after, except when a slot is taken:
then the SQL write is guarded (`taken < overlap`) and Redis is corrected if
the guard fails, so a stale Redis can never hand out a slot twice.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import time
import uuid
from typing import Any, Iterable, NamedTuple

import orjson

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql

from tasks.dispatch import AnnotatorState, Dispatch, LeaseState, MicroTaskState, ProjectState

from .. import labelconfig
from ..extensions import Direct, db, redis
from ..models import (Annotation, Assignment, AssignmentScore, BackgroundJob, GoldAnswer, Item, MicroTask,
                      MicroTaskItem, Prediction, Profile, Project, ProjectSkill, Skill, SkillLevel, User, utcnow)
from ..prepared import Prepared
from ..queue import enqueue
from ..scoring import matching, pay
from . import assist, audit, gold, projects, qualifications
from . import skills as skill_levels  # `skills` names a project's minimums below
from .scoring import extra_overlap_needed
from .pay import pay_floors
from .errors import Conflict, DomainError, Forbidden, Invalid, NotFound

log = logging.getLogger(__name__)

# Everyone takes the qualification micro-task: it has no real overlap limit.
QUALIFICATION_OVERLAP = 1_000_000_000


class Unavailable(DomainError):
    status = 503


def dispatcher() -> Dispatch:
    """The app's dispatch state, with the operators' deadline window and retake cooling-off."""
    client, config = redis.client, current_app.config
    window, retake_after = config["DEADLINE_WINDOW_SECONDS"], config["QUALIFICATION_RETAKE_AFTER_SECONDS"]
    state = current_app.extensions.get("annotate.dispatch")
    # The settings are compared too: tests change them on a running app.
    if (state is None or state.r is not client or state.deadline_window != window
            or state.retake_after != retake_after):
        state = Dispatch(client, deadline_window=window, retake_after=retake_after)
        current_app.extensions["annotate.dispatch"] = state
    return state


def _epoch(moment: dt.datetime) -> float:
    return moment.timestamp()


def _moment(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


# --- publishing -------------------------------------------------------------------


def publish_project(user_id: int, project_id: int) -> int:
    """Make a draft or paused project live and queue the split of its items
    into micro-tasks; returns the id of that background job."""
    rq_id = f"split-{uuid.uuid4().hex}"
    with db.transaction() as session:
        user = session.get(User, user_id)
        project = projects.visible_project(session, user, project_id)
        if not (user.is_operator or project.team_id in projects._team_ids(session, user)):
            raise Forbidden("only requesters of the project's team may publish it")
        if project.archived_at is not None:
            raise Conflict("an archived project cannot be published")
        if project.status == "live":
            raise Conflict("the project is live already")
        _check_publishable(session, project)
        project.status = "live"
        project.published_at = project.published_at or utcnow()
        job = BackgroundJob(rq_id=rq_id, kind="split", project_id=project_id, user_id=user_id)
        session.add(job)
        audit.record(session, actor_id=user_id, action="publish_project", target_type="project", target_id=project_id)
        session.flush()
        job_id = job.id
    enqueue("tasks.jobs.split_project", job_id, job_id=rq_id)
    return job_id


def _check_publishable(session, project: Project) -> None:
    regular, golden = session.execute(
        select(func.count(Item.id).filter(Item.is_gold.is_(False)), func.count(Item.id).filter(Item.is_gold.is_(True)))
        .where(Item.project_id == project.id)).one()
    if regular == 0:
        raise Invalid("upload items before publishing: the project has none")
    if golden < project.qualification_gold_count:
        raise Invalid(f"the qualification asks for {project.qualification_gold_count} gold items "
                      f"but the project has {golden}: upload more gold items", field="qualification_gold_count")
    if project.gold_share > 0 and golden == 0:
        raise Invalid("gold_share is above 0 but the project has no gold items", field="gold_share")
    floor = pay_floors().get(project.currency)
    if floor is None:
        raise Invalid(f"there is no pay floor for {project.currency}: an operator must add it to PAY_FLOORS",
                      field="currency")
    if not project.estimated_seconds_per_micro_task:
        raise Invalid("give estimated_seconds_per_micro_task, so the hourly pay can be checked against the floor",
                      field="estimated_seconds_per_micro_task")
    check = pay.check_publish_rate(project.pay_per_micro_task, project.estimated_seconds_per_micro_task, floor)
    if not check.ok:
        raise Invalid(
            f"pay of {project.pay_per_micro_task} per micro-task for about {project.estimated_seconds_per_micro_task} s "
            f"is {check.implied_rate} {project.currency} minor units an hour, below the floor of {floor}: "
            f"pay at least {check.min_pay_minor}", field="pay_per_micro_task")


def resume_project(user_id: int, project_id: int) -> int:
    return publish_project(user_id, project_id)


def split_project(job_id: int) -> int:
    """The background job: cut the project's new items into micro-tasks and
    queue them. Safe to run again: items already in a micro-task are skipped,
    and the micro-tasks it made are queued again from SQL. Returns the project's id."""
    session = db.session
    job = session.get(BackgroundJob, job_id)
    if job is None:
        raise NotFound(f"no background job {job_id}")
    # A retry after the queueing below failed finds the cut made already (its result is set).
    if job.status != "finished" and "micro_tasks" not in (job.result or {}):
        _split(job_id)
    job = db.session.get(BackgroundJob, job_id)
    db.analyze("item", "micro_task", "micro_task_item", rows=job.result.get("items", 0))
    project = db.session.get(Project, job.project_id)
    if project.status == "live":
        first, last = job.result.get("first_seq"), job.result.get("last_seq")
        if first is not None:
            dispatcher().add_micro_tasks(_micro_task_states(project.id, first, last))
        dispatcher().set_project(_project_state(project))
    db.session.rollback()
    return project.id


def _split(job_id: int) -> None:
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        # Two splits of one project would cut the same items twice.
        project = session.scalar(select(Project).where(Project.id == job.project_id).with_for_update())
        job.status, job.started_at = "running", utcnow()
        seq = session.scalar(select(func.coalesce(func.max(MicroTask.seq), 0)).where(MicroTask.project_id == project.id))
        first_seq = seq + 1
        in_micro_task = select(MicroTaskItem.item_id).join(MicroTask).where(MicroTask.project_id == project.id)
        fresh = list(session.scalars(select(Item.id).where(
            Item.project_id == project.id, Item.is_gold.is_(False), Item.id.not_in(in_micro_task)).order_by(Item.id)))
        gold_ids = list(session.scalars(select(Item.id).where(Item.project_id == project.id, Item.is_gold.is_(True))
                                        .order_by(Item.id)))
        rng = random.Random(project.id * 7919 + seq)
        batches: list[tuple[bool, int, list[int]]] = []  # (qualification, overlap, item ids)
        has_qualification = session.scalar(select(MicroTask.id).where(
            MicroTask.project_id == project.id, MicroTask.is_qualification.is_(True)))
        qualification_gold = gold_ids[:project.qualification_gold_count]
        if project.requires_qualification and not has_qualification:
            batches.append((True, QUALIFICATION_OVERLAP, qualification_gold))
        # Hidden checks prefer gold the qualification did not show.
        hidden_pool = [g for g in gold_ids if g not in set(qualification_gold)] or gold_ids
        per_task = project.items_per_micro_task
        n_gold = min(len(hidden_pool), round(per_task * project.gold_share)) if hidden_pool else 0
        n_regular = max(1, per_task - n_gold)
        for start in range(0, len(fresh), n_regular):
            chunk = fresh[start:start + n_regular]
            hidden = rng.sample(hidden_pool, n_gold) if n_gold else []
            items = chunk + hidden
            rng.shuffle(items)
            batches.append((False, project.overlap, items))
        now = utcnow()
        micro_task_rows = [{"project_id": project.id, "seq": seq + i + 1, "is_qualification": qual, "overlap": overlap,
                            "status": "open", "taken": 0, "submitted": 0, "created_at": now}
                           for i, (qual, overlap, _items) in enumerate(batches)]
        if micro_task_rows:
            session.execute(sa.insert(MicroTask), micro_task_rows)
            ids = dict(session.execute(select(MicroTask.seq, MicroTask.id).where(
                MicroTask.project_id == project.id, MicroTask.seq >= first_seq)).all())
            item_rows = [{"micro_task_id": ids[seq + i + 1], "position": position, "item_id": item_id}
                         for i, (_q, _o, items) in enumerate(batches) for position, item_id in enumerate(items)]
            session.execute(sa.insert(MicroTaskItem), item_rows)
        job.status, job.finished_at = "finished", utcnow()
        job.done = job.total = len(fresh)
        job.result = {"micro_tasks": len(batches), "items": len(fresh),
                      "first_seq": first_seq if batches else None, "last_seq": seq + len(batches) if batches else None}


def _micro_task_states(project_id: int, first_seq: int | None = None, last_seq: int | None = None) -> list[MicroTaskState]:
    session = db.session
    stmt = select(MicroTask).where(MicroTask.project_id == project_id, MicroTask.status == "open")
    if first_seq is not None:
        stmt = stmt.where(MicroTask.seq.between(first_seq, last_seq))
    micro_tasks = list(session.scalars(stmt))
    had: dict[int, list[int]] = {}
    ids = [mt.id for mt in micro_tasks]
    for start in range(0, len(ids), 5000):
        for mt_id, annotator_id in session.execute(select(Assignment.micro_task_id, Assignment.annotator_id)
                                                   .where(Assignment.micro_task_id.in_(ids[start:start + 5000]))):
            had.setdefault(mt_id, []).append(annotator_id)
    return [MicroTaskState(mt.id, mt.project_id, mt.seq, mt.overlap - mt.taken, mt.is_qualification,
                           tuple(had.get(mt.id, ()))) for mt in micro_tasks]


def apply_dynamic_overlap(micro_task_id: int) -> int:
    """After scoring: a done micro-task whose items stayed below the project's confidence
    target is opened again for more annotators (one more a round, up to max_overlap).
    Those who already had it never get it again. Returns the slots added."""
    project_id = db.session.scalar(select(MicroTask.project_id).where(MicroTask.id == micro_task_id))
    if project_id is None:
        raise NotFound(f"no micro-task {micro_task_id}")
    extra = extra_overlap_needed(project_id, micro_task_id).get(micro_task_id, 0)
    if not extra:
        return 0
    with db.transaction() as session:
        mt = session.get(MicroTask, micro_task_id, with_for_update=True)
        project = session.get(Project, mt.project_id)
        overlap = min(project.max_overlap, mt.overlap + extra)
        if mt.status != "done" or project.status != "live" or overlap <= mt.overlap:
            return 0
        added = overlap - mt.overlap
        mt.overlap, mt.status, mt.done_at = overlap, "open", None
        seq = mt.seq
    # SQL first, then Redis: the slots appear in the queue among the started micro-tasks.
    for state in _micro_task_states(project_id, seq, seq):
        dispatcher().sync_micro_task(state)
    db.session.rollback()
    return added


def _project_state(project: Project, *, with_counts: bool = False) -> ProjectState:
    """What dispatch needs of a project. `with_counts` adds each annotator's
    micro-tasks for the share cap: only a rebuild sets those, as live
    hand-outs keep them in Redis."""
    session = db.session
    qualification = session.scalar(select(MicroTask.id).where(
        MicroTask.project_id == project.id, MicroTask.is_qualification.is_(True)))
    tests = qualifications.attempts(session, project)  # over every qualification micro-task (retakes)
    regular = sa.and_(MicroTask.project_id == project.id, MicroTask.is_qualification.is_(False))
    cap = share_cap(project)
    took: tuple = ()
    if with_counts:
        took = tuple(session.execute(
            select(Assignment.annotator_id, func.count(Assignment.id)).join(MicroTask)
            .where(regular, Assignment.status.in_(("leased", "submitted"))).group_by(Assignment.annotator_id)).all())
    skills = tuple(session.execute(select(ProjectSkill.skill_id, ProjectSkill.min_level)
                                   .where(ProjectSkill.project_id == project.id)).all())
    ref = references([project])[project.id]
    return ProjectState(project.id, project.priority, project.lease_seconds, project.requires_qualification,
                        qualification, tests.passed, categories=tuple(project.content_categories or ()),
                        languages=tuple(project.required_languages or ()), skills=skills, cap=cap, took=took,
                        config_kind=project.config_kind, rate=ranking_rate(project, ref),
                        kind_skill=kind_skills().get(project.config_kind, 0),
                        deadline=int(project.deadline.timestamp()) if project.deadline else 0,
                        tried=tests.tried, ended=tests.ended)


# --- what matching knows of pace and pay (annotate.scoring.matching) ---------------------

RATE_WINDOW = 500  # a project's latest scored micro-tasks behind its median
SPEED_WINDOW = 100  # an annotator's latest scored micro-tasks of one config kind behind their pace


def ranking_rate(project: Project, ref: matching.Reference) -> int:
    """The project's hourly rate at the usual pace in RANKING_CURRENCY, for ordering projects only
    (pay is never converted); 0 when the operators set no exchange rate for its currency."""
    converted = matching.in_ranking_currency(matching.project_rate(project.pay_per_micro_task, ref),
                                             project.currency, current_app.config.get("RANKING_CURRENCY", "USD"),
                                             current_app.config.get("RANKING_EXCHANGE_RATES", {}))
    return converted or 0


def kind_skills() -> dict[str, int]:
    """Config kind -> the platform's skill for it."""
    return dict(db.session.execute(select(Skill.config_kind, Skill.id).where(Skill.config_kind.is_not(None))).all())


def _scored_seconds(project_id: int) -> list[float]:
    """Active seconds of the project's latest scored regular assignments."""
    return list(db.session.scalars(
        select(Assignment.active_seconds).join(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
        .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
        .where(Assignment.project_id == project_id, Assignment.status == "submitted",
               MicroTask.is_qualification.is_(False))
        .order_by(Assignment.id.desc()).limit(RATE_WINDOW)))


def references(projects_: Iterable[Project]) -> dict[int, matching.Reference]:
    """Each project's seconds per micro-task at the usual pace: its median over scored work, or the estimate."""
    projects_ = list(projects_)
    if len(projects_) == 1:
        samples = {projects_[0].id: _scored_seconds(projects_[0].id)}
    else:  # one query for all, the latest RATE_WINDOW of each
        samples = {p.id: [] for p in projects_}
        rank = func.row_number().over(partition_by=Assignment.project_id, order_by=Assignment.id.desc()).label("rank")
        inner = (select(Assignment.project_id, Assignment.active_seconds, rank)
                 .join(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
                 .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
                 .where(Assignment.project_id.in_(list(samples)), Assignment.status == "submitted",
                        MicroTask.is_qualification.is_(False)).subquery())
        for project_id, active in db.session.execute(select(inner.c.project_id, inner.c.active_seconds)
                                                     .where(inner.c.rank <= RATE_WINDOW)):
            samples[project_id].append(active)
    return {p.id: matching.reference(samples[p.id], p.estimated_seconds_per_micro_task) for p in projects_}


def speeds(annotator_ids: Iterable[int]) -> dict[int, dict[str, tuple[int, int]]]:
    """Annotator -> config kind -> (pace in basis points, scored micro-tasks behind it), from their
    latest scored regular work of each kind, each measured against its project's reference."""
    session = db.session
    ids = sorted(set(annotator_ids))
    rows: list = []
    for start in range(0, len(ids), 5000):
        rank = func.row_number().over(partition_by=(Assignment.annotator_id, Project.config_kind),
                                      order_by=Assignment.id.desc()).label("rank")
        inner = (select(Assignment.annotator_id, Assignment.project_id, Project.config_kind, Assignment.active_seconds,
                        rank)
                 .join(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
                 .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
                 .join(Project, Project.id == Assignment.project_id)
                 .where(Assignment.annotator_id.in_(ids[start:start + 5000]), Assignment.status == "submitted",
                        MicroTask.is_qualification.is_(False)).subquery())
        rows += session.execute(select(inner.c.annotator_id, inner.c.project_id, inner.c.config_kind,
                                       inner.c.active_seconds).where(inner.c.rank <= SPEED_WINDOW)).all()
    refs = references(session.scalars(select(Project).where(Project.id.in_({r.project_id for r in rows}))))
    ratios: dict[tuple[int, str], list[float]] = {}
    for annotator_id, project_id, kind, active in rows:
        ref = refs[project_id].seconds
        if ref and active > 0:
            ratios.setdefault((annotator_id, kind), []).append(active / ref)
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for (annotator_id, kind), values in ratios.items():
        out.setdefault(annotator_id, {})[kind] = (matching.speed(values), len(values))
    return out


def refresh_matching(micro_task_id: int | None = None) -> dict[str, int]:
    """Push projects' rates and annotators' pace to Redis: after a micro-task is scored, its
    project's and its annotators'; without one, every live project's and every annotator's
    with scored work (the periodic refresh). Idempotent."""
    session = db.session
    if micro_task_id is not None:
        mt = session.get(MicroTask, micro_task_id)
        if mt is None:
            raise NotFound(f"no micro-task {micro_task_id}")
        live = list(session.scalars(select(Project).where(Project.id == mt.project_id, Project.status == "live")))
        who = set(session.scalars(select(Assignment.annotator_id).where(Assignment.micro_task_id == micro_task_id,
                                                                        Assignment.status == "submitted")))
    else:
        live = list(session.scalars(select(Project).where(Project.status == "live", Project.archived_at.is_(None))))
        who = set(session.scalars(select(Assignment.annotator_id).join(AssignmentScore).distinct()))
    refs = references(live)
    rates = {p.id: ranking_rate(p, refs[p.id]) for p in live}
    paces = speeds(who)
    session.rollback()
    d = dispatcher()
    d.set_rates(rates)
    d.set_speeds({a: tuple((k, bp) for k, (bp, _n) in sorted(paces.get(a, {}).items())) for a in who})
    return {"projects": len(rates), "annotators": len(who)}


def share_cap(project: Project) -> int:
    """The most regular micro-tasks of the project one annotator may hold or have submitted; 0 = no cap."""
    if not project.max_share_per_annotator:
        return 0
    total = db.session.scalar(select(func.count(MicroTask.id)).where(
        MicroTask.project_id == project.id, MicroTask.is_qualification.is_(False))) or 0
    return max(1, math.floor(project.max_share_per_annotator * total + 1e-9))


def annotator_state(user_id: int) -> AnnotatorState:
    return annotator_states([user_id])[0]


def annotator_states(annotator_ids: Iterable[int]) -> list[AnnotatorState]:
    """What dispatch needs of each annotator (languages, opt-outs, skill levels), a few queries per 5,000."""
    session = db.session
    ids = sorted(set(annotator_ids))
    out = []
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        profiles = {p.user_id: p for p in session.scalars(select(Profile).where(Profile.user_id.in_(chunk)))}
        levels: dict[int, list[tuple[int, int]]] = {}
        paces = speeds(chunk)
        for a, skill_id, level in session.execute(select(SkillLevel.annotator_id, SkillLevel.skill_id, SkillLevel.level)
                                                  .where(SkillLevel.annotator_id.in_(chunk))
                                                  .order_by(SkillLevel.annotator_id, SkillLevel.skill_id)):
            levels.setdefault(a, []).append((skill_id, level))
        for user_id in chunk:
            profile, held = profiles.get(user_id), tuple(levels.get(user_id, ()))
            pace = tuple((kind, bp) for kind, (bp, _n) in sorted(paces.get(user_id, {}).items()))
            if profile is None:
                out.append(AnnotatorState(user_id, skills=held, speeds=pace))
                continue
            out.append(AnnotatorState(user_id, tuple(declared_languages(profile)),
                                      tuple(profile.opted_out_categories or ()), held, pace))
    return out


def declared_languages(profile: Profile | None) -> list[str]:
    """The ISO codes an annotator declared, lower case, as dispatch compares them."""
    if profile is None:
        return []
    return sorted({str(entry.get("code", "")).lower() for entry in profile.languages
                   if isinstance(entry, dict) and entry.get("code")})


def _passes(project: Project, right: int, total: int) -> bool:
    return total > 0 and right >= math.ceil(project.qualification_min_accuracy * total - 1e-9)


# --- the annotator's side -------------------------------------------------------------


def next_assignment(annotator_id: int, project_id: int | None = None) -> dict[str, Any] | None:
    """A lease on one micro-task for this annotator, or None when there is nothing for them."""
    d = dispatcher()
    for _attempt in range(8):
        offer = d.next(annotator_id, project_id)
        if offer.kind == "rebuild":
            ensure_dispatch_state()
            continue
        if offer.kind == "blocked":
            user = db.session.get(User, annotator_id)
            raise Forbidden(f"your account is blocked: {user.blocked_reason or 'ask an operator why'}")
        if offer.kind == "none":
            if _reclaim_some():
                continue  # a slot came back: look again
            return None
        if offer.kind == "expired":
            expire_lease(offer.micro_task_id, annotator_id)
            continue
        if offer.kind == "fresh":  # a qualification retake, and every test micro-task was had
            qualifications.fresh_micro_task(d, annotator_id, offer.project_id)
            continue
        if offer.kind == "held":
            assignment = _assignment_of(offer.micro_task_id, annotator_id)
            if assignment is not None and assignment.status == "leased":
                return work_payload(assignment)
            _reconcile_lease(offer.micro_task_id, annotator_id, offer.project_id)
            continue
        payload = _record_lease(offer, annotator_id)
        if payload is not None:
            _reclaim_now_and_then()
            return payload
    raise Unavailable("the work queue is busy; ask again in a moment")


def _record_lease(offer, annotator_id: int) -> dict[str, Any] | None:
    """Write the SQL row of a lease Redis just gave out and read what the annotator gets, in one
    transaction; undo it in Redis if SQL disagrees."""
    direct = db.direct()
    try:
        if direct.dialect.name == "postgresql" and not offer.qualification:
            return _take_lease(direct, offer, annotator_id)
        with direct.transaction():
            if direct.execute(_TAKE_SLOT, {"mt": offer.micro_task_id}).rowcount != 1:
                raise _Stale()
            if offer.qualification and qualifications.already_tried(direct, offer.project_id, annotator_id):
                raise _Stale()
            expires = _moment(offer.expires_at)
            assignment_id = direct.execute(_NEW_LEASE, {
                "micro_task_id": offer.micro_task_id, "annotator_id": annotator_id, "project_id": offer.project_id,
                "status": "leased", "leased_at": utcnow(), "lease_expires_at": expires,
                "active_seconds": 0.0, "with_predictions": False}).fetchone()[0]
            # Read in the same transaction: a second one would cost a commit.
            return _payload(direct, assignment_id, offer.micro_task_id, "leased", expires)
    except (_Stale, direct.IntegrityError):
        log.warning("dispatch state of micro-task %s was stale; resynced from SQL", offer.micro_task_id)
        d = dispatcher()
        d.finish(offer.micro_task_id, annotator_id, offer.project_id)
        _resync_micro_task(offer.micro_task_id)
        return None


def _take_lease(direct: Direct, offer, annotator_id: int) -> dict[str, Any]:
    """_record_lease's work in one statement (PostgreSQL), two if the items moved meanwhile."""
    expires = _moment(offer.expires_at)
    rows = direct.execute(_LEASE_TAKEN, {
        "mt": offer.micro_task_id, "annotator_id": annotator_id, "project_id": offer.project_id,
        "leased_at": utcnow(), "lease_expires_at": expires}).fetchall()
    if not rows:
        raise _Stale()
    moved = any(row[1] for row in rows)
    view = None if moved else [row[2:] for row in rows]
    return _payload(direct, rows[0][0], offer.micro_task_id, "leased", expires, view)


class _Stale(Exception):
    pass


def _resync_micro_task(micro_task_id: int) -> None:
    session = db.session
    mt = session.get(MicroTask, micro_task_id)
    session.refresh(mt)
    states = _micro_task_states(mt.project_id, mt.seq, mt.seq)
    leases = [LeaseState(a.micro_task_id, a.annotator_id, a.project_id, _epoch(a.lease_expires_at))
              for a in session.scalars(select(Assignment).where(Assignment.micro_task_id == micro_task_id,
                                                                Assignment.status == "leased"))]
    if states:
        dispatcher().sync_micro_task(states[0], leases)
    else:  # done meanwhile
        dispatcher().r.zrem(f"d:p:{mt.project_id}:q", micro_task_id)
    session.rollback()


def _assignment_of(micro_task_id: int, annotator_id: int) -> Assignment | None:
    return db.session.scalar(select(Assignment).where(Assignment.micro_task_id == micro_task_id,
                                                      Assignment.annotator_id == annotator_id))


def _owned(session, annotator_id: int, assignment_id: int) -> Assignment:
    assignment = session.get(Assignment, assignment_id, with_for_update=True)
    # Someone else's assignment is reported as missing.
    if assignment is None or assignment.annotator_id != annotator_id:
        raise NotFound(f"no assignment {assignment_id}")
    return assignment


# The hot path's statements, prepared once (annotate.prepared): next and submit run them.
_take_slot = (update(MicroTask).where(MicroTask.id == sa.bindparam("mt"), MicroTask.status == "open",
                                     MicroTask.taken < MicroTask.overlap)
              .values(taken=MicroTask.taken + 1))
_TAKE_SLOT = Prepared(_take_slot)
_LEASE_FIELDS = ["micro_task_id", "annotator_id", "project_id", "status", "leased_at", "lease_expires_at",
                 "active_seconds", "with_predictions"]
_NEW_LEASE = Prepared(sa.insert(Assignment).returning(Assignment.id), _LEASE_FIELDS)


def _lease_view(query: sa.Select) -> sa.Select:
    """`query` with what a lease shows: the project's settings on each of the micro-task's items,
    in order, with their data as JSON text (parsed once, by orjson)."""
    return (query.add_columns(Project.id, Project.title, Project.lease_seconds, Project.show_predictions,
                              MicroTask.is_qualification, Project.unassisted_share, Project.assist,
                              Project.assist_error, Project.prediction_min_score, Item.id,
                              sa.cast(Item.data, sa.Text), Item.is_gold)
            .join(MicroTask, MicroTask.id == MicroTaskItem.micro_task_id)
            .join(Project, Project.id == MicroTask.project_id).join(Item, Item.id == MicroTaskItem.item_id)
            .order_by(MicroTaskItem.position))


_LEASE_VIEW = Prepared(_lease_view(select().select_from(MicroTaskItem)
                                   .where(MicroTaskItem.micro_task_id == sa.bindparam("mt"))))
# The micro-task's predictions, newest first: the workbench starts from the first of an item.
_PREDICTIONS = Prepared(select(Prediction.id, Prediction.item_id, sa.cast(Prediction.result, sa.Text),
                               Prediction.score, Prediction.model_version)
                        .join(MicroTaskItem, MicroTaskItem.item_id == Prediction.item_id)
                        .where(MicroTaskItem.micro_task_id == sa.bindparam("mt")).order_by(Prediction.id.desc()))


def work_payload(assignment: Assignment) -> dict[str, Any]:
    return _payload(db.direct(), assignment.id, assignment.micro_task_id, assignment.status,
                    assignment.lease_expires_at)


def _payload(direct: Direct, assignment_id: int, micro_task_id: int, status: str,
             lease_expires_at: dt.datetime, view: list | None = None) -> dict[str, Any]:
    """What an annotator gets with a lease: one indexed query (two with predictions), as this is the hot
    path; `view` is that query's rows when the caller read them already."""
    if view is None:
        view = direct.execute(_LEASE_VIEW, {"mt": micro_task_id}).fetchall()
    (project_id, title, lease_seconds, show_predictions, is_qualification, unassisted_share, source, assist_error,
     bar) = view[0][:9]
    rows = [row[9:] for row in view]
    # Qualification work, gold items and the unassisted share never carry predictions (anchoring).
    offered = bool(show_predictions) and not is_qualification
    with_predictions = offered and assist.assisted(assignment_id, unassisted_share)
    predictions: dict[int, list] = {}
    if with_predictions:
        gold_items = {item_id for item_id, _data, is_gold in rows if is_gold}
        for prediction_id, item_id, result, score, version in direct.execute(_PREDICTIONS, {"mt": micro_task_id}):
            if item_id not in gold_items:
                predictions.setdefault(item_id, []).append(
                    {"id": prediction_id, "result": orjson.loads(result), "score": score, "model_version": version})
        # The page starts from the newest one: below the project's bar, the item starts empty.
        predictions = {i: found for i, found in predictions.items() if assist.sure_enough(found[0]["score"], bar)}
    items = []
    for item_id, data, _is_gold in rows:
        entry = {"id": item_id, "data": orjson.loads(data)}
        if with_predictions:
            entry["predictions"] = predictions.get(item_id, [])
        items.append(entry)
    payload = {
        "assignment_id": assignment_id,
        "project": project_id,
        "project_title": title,
        "micro_task": micro_task_id,
        "is_qualification": bool(is_qualification),
        "status": status,
        "lease_expires_at": lease_expires_at.isoformat(),
        "lease_seconds": lease_seconds,
        "items": items,
    }
    if offered:
        payload["assist"] = {"source": source, "shown": with_predictions,
                             "unavailable": (f"The model is unavailable ({assist_error}): label these items "
                                             "without pre-annotations.") if assist_error and with_predictions
                             else None}
    return payload


def _check_annotations(label_config: str, item_ids: list[int], raw: Any) -> list[dict]:
    """Every item of the micro-task exactly once, each result valid for the config."""
    if not isinstance(raw, list):
        raise Invalid("annotations must be a list of {item_id, result, seconds}", field="annotations")
    config = labelconfig.parse_config(label_config)
    wanted = set(item_ids)
    seen: set[int] = set()
    checked = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise Invalid(f"annotation {index + 1} must be an object", field="annotations")
        item_id = entry.get("item_id")
        if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id not in wanted:
            raise Invalid(f"annotation {index + 1}: item_id {item_id!r} is not an item of this micro-task",
                          field="item_id")
        if item_id in seen:
            raise Invalid(f"item {item_id} is annotated twice", field="item_id")
        seen.add(item_id)
        seconds = entry.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 86400:
            raise Invalid(f"item {item_id}: seconds must be a number of active seconds, not {seconds!r}",
                          field="seconds")
        try:
            labelconfig.validate_result(config, entry.get("result"), f"item {item_id}")
        except labelconfig.ResultError as error:
            raise Invalid(str(error), field=getattr(error, "field", None) or "result") from None
        checked.append({"item_id": item_id, "result": entry["result"], "seconds": float(seconds)})
    missing = wanted - seen
    if missing:
        raise Invalid(f"items {', '.join(map(str, sorted(missing)))} have no annotation", field="annotations")
    return checked


class _SubmitHead(NamedTuple):
    annotator_id: int
    status: str
    micro_task_id: int
    project_id: int
    show_predictions: bool
    unassisted_share: float
    prediction_min_score: float
    is_qualification: bool
    label_config: str
    items: list[tuple[int, bool]]  # (item id, gold) in the micro-task's order


# An assignment with its project's settings, once a row for each item of its micro-task.
_SUBMIT_VIEW = Prepared(
    select(Assignment.annotator_id, Assignment.status, Assignment.micro_task_id, Assignment.project_id,
           Project.show_predictions, Project.unassisted_share, Project.prediction_min_score,
           MicroTask.is_qualification, Project.updated_at, MicroTaskItem.item_id, Item.is_gold)
    .select_from(Assignment).join(MicroTask, MicroTask.id == Assignment.micro_task_id)
    .join(Project, Project.id == MicroTask.project_id)
    .join(MicroTaskItem, MicroTaskItem.micro_task_id == Assignment.micro_task_id)
    .join(Item, Item.id == MicroTaskItem.item_id)
    .where(Assignment.id == sa.bindparam("assignment")).order_by(MicroTaskItem.position))
_LABEL_CONFIG = Prepared(select(Project.label_config).where(Project.id == sa.bindparam("project")))
# (project, its updated_at as the driver gives it) -> label config: a config can be long,
# and every submit checks against it. A change of the config changes updated_at.
_label_configs: dict[tuple[int, Any], str] = {}
LABEL_CONFIGS_KEPT = 1000


def _submit_head(direct: Direct, assignment_id: int) -> _SubmitHead | None:
    rows = direct.execute(_SUBMIT_VIEW, {"assignment": assignment_id}).fetchall()
    if not rows:
        return None
    (annotator_id, status, micro_task_id, project_id, show_predictions, unassisted_share, bar, is_qualification,
     updated) = rows[0][:9]
    config = _label_configs.get((project_id, updated))
    if config is None:
        config = direct.execute(_LABEL_CONFIG, {"project": project_id}).fetchone()[0]
        if len(_label_configs) >= LABEL_CONFIGS_KEPT:
            _label_configs.clear()
        _label_configs[(project_id, updated)] = config
    return _SubmitHead(annotator_id, status, micro_task_id, project_id, bool(show_predictions), unassisted_share, bar,
                       bool(is_qualification), config, [(item_id, bool(gold)) for *_head, item_id, gold in rows])


_MARK_SUBMITTED = (update(Assignment).where(Assignment.id == sa.bindparam("assignment"))
                   .values(status="submitted", submitted_at=sa.bindparam("now"), ended_at=sa.bindparam("now"),
                           active_seconds=sa.bindparam("seconds"), decision="pending",
                           with_predictions=sa.bindparam("with_predictions")))
_SUBMIT_LEASED = Prepared(_MARK_SUBMITTED.where(Assignment.status == "leased"))
_NEW_ANNOTATION = Prepared(sa.insert(Annotation).inline(),  # inline: no RETURNING of the ids
                           ["assignment_id", "item_id", "result", "seconds", "had_prediction", "accepted_prediction",
                            "created_at"])
# One more submission; a regular micro-task with all its submissions is done.
_COUNT_SUBMISSION = (
    update(MicroTask).where(MicroTask.id == sa.bindparam("mt"))
    .values(submitted=MicroTask.submitted + 1,
            status=sa.case((sa.and_(MicroTask.is_qualification.is_(False),
                                    MicroTask.submitted + 1 >= MicroTask.overlap), "done"), else_=MicroTask.status),
            done_at=sa.case((sa.and_(MicroTask.is_qualification.is_(False),
                                     MicroTask.submitted + 1 >= MicroTask.overlap), sa.bindparam("now")),
                            else_=MicroTask.done_at))
    .returning(MicroTask.status, MicroTask.is_qualification))
_COUNT_SUBMISSION_PREPARED = Prepared(_COUNT_SUBMISSION)

# On PostgreSQL every statement is a round trip to the server, so taking a lease
# and storing a submit are one statement each: data-modifying CTEs, which run in
# the statement's own transaction (no BEGIN or COMMIT to send either). Each does
# what the steps above do on SQLite, in-process, and answers with no row where
# their guard would have failed.
_slot = _take_slot.returning(MicroTask.id).cte("slot")
_lease = (sa.insert(Assignment).from_select(
    _LEASE_FIELDS,
    select(_slot.c.id, sa.bindparam("annotator_id", type_=sa.Integer), sa.bindparam("project_id", type_=sa.Integer),
           sa.literal("leased"), sa.bindparam("leased_at", type_=Assignment.leased_at.type),
           sa.bindparam("lease_expires_at", type_=Assignment.lease_expires_at.type), sa.literal(0.0), sa.false()))
    .returning(Assignment.id, Assignment.micro_task_id).cte("lease"))
# The new assignment's id, whether an item row was deleted since the statement's snapshot, then
# what _LEASE_VIEW reads: a row per item, none if the slot was gone. The statement reads from the
# snapshot it started with; a re-forming of the queue (services.uncertainty) that held the
# micro-task's lock meanwhile has moved its items, deleting the rows seen here (their xmax is
# set), and the items are then read again.
_LEASE_TAKEN = Prepared(_lease_view(
    select(_lease.c.id, sa.cast(sa.literal_column("micro_task_item.xmax"), sa.Text) != "0")
    .select_from(_lease).join(MicroTaskItem, MicroTaskItem.micro_task_id == _lease.c.micro_task_id)))
_submitted = _SUBMIT_LEASED.statement.returning(Assignment.id).cte("submitted")
_answers = sa.func.unnest(
    sa.cast(sa.bindparam("item_ids"), postgresql.ARRAY(sa.Integer)),
    sa.cast(sa.bindparam("results"), postgresql.ARRAY(sa.Text)),
    sa.cast(sa.bindparam("seconds_each"), postgresql.ARRAY(sa.Float)),
    sa.cast(sa.bindparam("had"), postgresql.ARRAY(sa.Boolean)),
    sa.cast(sa.bindparam("accepted"), postgresql.ARRAY(sa.Boolean)),
).table_valued("item_id", "result", "seconds", "had", "accepted").render_derived()
_annotations = sa.insert(Annotation).from_select(
    ["assignment_id", "item_id", "result", "seconds", "had_prediction", "accepted_prediction", "created_at"],
    select(_submitted.c.id, _answers.c.item_id, sa.cast(_answers.c.result, postgresql.JSONB), _answers.c.seconds,
           _answers.c.had, _answers.c.accepted, sa.bindparam("now", type_=Annotation.created_at.type))
    .select_from(_submitted).join(_answers, sa.true())).cte("annotations")
# The micro-task's status after one more submission; no row if the assignment was not leased.
_SUBMIT_STORED = Prepared(_COUNT_SUBMISSION.where(sa.exists(select(_submitted.c.id))).add_cte(_annotations))


def submit(annotator_id: int, assignment_id: int, raw_annotations: Any) -> dict[str, Any]:
    """Store the annotator's results for a whole micro-task. A repeated submit
    answers with what was stored; a late one is accepted while its slot is free."""
    d = dispatcher()
    direct = db.direct()
    # The answers are checked before the write transaction, which on SQLite holds the one write lock.
    head = _submit_head(direct, assignment_id)
    if head is None or head.annotator_id != annotator_id:  # someone else's is reported as missing
        raise NotFound(f"no assignment {assignment_id}")
    checked = None if head.status == "submitted" else _checked_answers(direct, head, assignment_id, raw_annotations)
    stored = None
    if checked is not None and head.status == "leased" and not head.is_qualification:
        stored = _submit_leased(direct, head, assignment_id, *checked)
    retaken: list[int] = []
    if stored is not None:
        (payload, finished), qualification = stored, None
        mt_id, project_id = head.micro_task_id, head.project_id
    else:
        try:
            with db.transaction() as session:
                # The row lock serialises two submits of one assignment (SQLite's write lock does the same).
                assignment = _owned(session, annotator_id, assignment_id)
                if assignment.status == "submitted":
                    return submitted_payload(assignment)
                mt_id, project_id = assignment.micro_task_id, assignment.project_id
                annotations, shown = checked or _checked_answers(direct, head, assignment_id, raw_annotations)
                if assignment.status in ("skipped", "released"):
                    raise Conflict(_lost_words(assignment))
                if assignment.status == "expired":
                    qualifications.refuse_late_submit_after_retake(session, mt_id, annotator_id, project_id)
                    _take_slot_back(session, d, mt_id, annotator_id, retaken)
                payload, qualification, finished = _store_submission(session, assignment, annotations, shown)
        except BaseException:
            if retaken:  # Redis gave the slot back to us; SQL did not keep it
                _resync_micro_task(retaken[0])
            raise
    # A finished micro-task goes to the scoring inbox in the same Redis call; one background job
    # drains it, so a submit queues one only when none is draining (tasks.jobs.score_finished).
    if d.finish(mt_id, annotator_id, project_id, done=finished):
        enqueue("tasks.jobs.score_finished", job_id=f"score-finished-{uuid.uuid4().hex}")
    if qualification and qualification["passed"]:
        d.qualify(project_id, annotator_id)
    if qualification is not None:
        # Qualification work is paid whether it passed or not; its gold is skill evidence, and a
        # pass grants the project's skills.
        enqueue("tasks.jobs.score_micro_task", mt_id, job_id=f"score-{mt_id}-{assignment_id}")
        skill_levels.qualification_scored(annotator_id, project_id)
    return payload


def _checked_answers(direct: Direct, head: _SubmitHead, assignment_id: int,
                     raw_annotations: Any) -> tuple[list[dict], bool]:
    """The submitted annotations checked against the config and the micro-task's items, marked
    with the pre-annotations shown; and whether predictions were shown."""
    annotations = _check_annotations(head.label_config, [item_id for item_id, _gold in head.items], raw_annotations)
    shown = head.show_predictions and not head.is_qualification and assist.assisted(assignment_id,
                                                                                    head.unassisted_share)
    gold_items = {item_id for item_id, is_gold in head.items if is_gold}
    _mark_predictions(direct, head.micro_task_id, annotations, shown, head.prediction_min_score, gold_items)
    return annotations, shown


def _mark_predictions(direct: Direct, micro_task_id: int, annotations: list[dict], shown: bool, bar: float,
                      gold_items: set[int]) -> None:
    """Record, from what the server showed (not what the page claims), which answers
    started from a pre-annotation and which kept it unchanged."""
    shown_on: dict[int, tuple[Any, str]] = {}
    if shown:
        for _id, item_id, result, score, _version in direct.execute(_PREDICTIONS, {"mt": micro_task_id}):
            if item_id not in shown_on and item_id not in gold_items:  # the newest comes first
                shown_on[item_id] = (score, result)
        shown_on = {i: found for i, found in shown_on.items() if assist.sure_enough(found[0], bar)}
    for entry in annotations:
        prediction = shown_on.get(entry["item_id"])
        entry["had_prediction"] = prediction is not None
        entry["accepted_prediction"] = (prediction is not None
                                        and assist.same_result(entry["result"], orjson.loads(prediction[1])))


def _take_slot_back(session, d: Dispatch, mt_id: int, annotator_id: int, retaken: list[int]) -> None:
    """A late submit: the lease ran out and its slot went back to the queue."""
    lost = Conflict("your lease ran out and the micro-task was given to someone else; your answers were not stored")
    mt = session.get(MicroTask, mt_id, with_for_update=True)
    if mt.status != "open" or not d.retake(mt.id, annotator_id, mt.project_id):
        raise lost
    retaken.append(mt.id)
    guarded = session.execute(update(MicroTask).where(MicroTask.id == mt.id, MicroTask.taken < MicroTask.overlap)
                              .values(taken=MicroTask.taken + 1))
    if guarded.rowcount != 1:
        raise lost


def _submit_leased(direct: Direct, head: _SubmitHead, assignment_id: int, annotations: list[dict],
                   shown: bool) -> tuple[dict, bool] | None:
    """The usual submit, of a live lease on regular work, without loading the row first: the
    guarded update says whether it is still leased (and takes its lock). None if it is not
    (the caller then takes the general path); else the answer and whether the micro-task is done."""
    now = utcnow()
    values = _submitted_values(assignment_id, now, annotations, shown)
    if direct.dialect.name == "postgresql":
        row = direct.execute(_SUBMIT_STORED, {
            **values, "mt": head.micro_task_id, "item_ids": [entry["item_id"] for entry in annotations],
            "results": [json.dumps(entry["result"]) for entry in annotations],
            "seconds_each": [entry["seconds"] for entry in annotations],
            "had": [entry["had_prediction"] for entry in annotations],
            "accepted": [entry["accepted_prediction"] for entry in annotations]}).fetchone()
        if row is None:
            return None
        status = row[0]
    else:
        with direct.transaction():
            if direct.execute(_SUBMIT_LEASED, values).rowcount != 1:
                return None
            direct.executemany(_NEW_ANNOTATION, [{"assignment_id": assignment_id, "created_at": now, **entry}
                                                 for entry in annotations])
            status, _qualification = direct.execute(_COUNT_SUBMISSION_PREPARED, {"mt": head.micro_task_id,
                                                                                 "now": now}).fetchone()
    return _submitted_body(assignment_id, now, annotations), status == "done"


def _submitted_values(assignment_id: int, now: dt.datetime, annotations: list[dict], shown: bool) -> dict:
    return {"assignment": assignment_id, "now": now, "seconds": sum(e["seconds"] for e in annotations),
            "with_predictions": shown}


def _submitted_body(assignment_id: int, now: dt.datetime, annotations: list[dict]) -> dict[str, Any]:
    return {"assignment_id": assignment_id, "status": "submitted", "submitted_at": now.isoformat(),
            "annotations": [{"item_id": e["item_id"], "result": e["result"], "seconds": e["seconds"]}
                            for e in annotations]}


def _store_submission(session, assignment: Assignment, annotations: list[dict],
                      shown: bool) -> tuple[dict, dict | None, bool]:
    now = utcnow()
    connection = session.connection()
    connection.execute(sa.insert(Annotation), [{"assignment_id": assignment.id, "created_at": now, **entry}
                                               for entry in annotations])
    connection.execute(_MARK_SUBMITTED, _submitted_values(assignment.id, now, annotations, shown))
    status, is_qualification = connection.execute(_COUNT_SUBMISSION, {"mt": assignment.micro_task_id, "now": now}).one()
    qualification = None
    if is_qualification:
        project = session.get(Project, assignment.project_id)
        qualification = _score_qualification(session, project, assignment, annotations)
    payload = _submitted_body(assignment.id, now, annotations)
    if qualification is not None:
        payload["qualification"] = qualification
    return payload, qualification, status == "done"


def _score_qualification(session, project: Project, assignment: Assignment, annotations: list[dict]) -> dict:
    answers = {g.item_id: g for g in session.scalars(select(GoldAnswer).where(
        GoldAnswer.item_id.in_([e["item_id"] for e in annotations])))}
    checks = []
    for entry in annotations:
        answer = answers.get(entry["item_id"])
        if answer is None:
            continue
        check = gold.compare(entry["result"], answer.result, project.iou_threshold)
        checks.append({"item_id": entry["item_id"], "right": check.right, "why": check.why,
                       "expected": answer.result, "explanation": answer.explanation})
    right = sum(c["right"] for c in checks)
    passed = _passes(project, right, len(checks))
    rule = (f"at least {math.ceil(project.qualification_min_accuracy * len(checks) - 1e-9)} of {len(checks)} "
            f"gold items right ({project.qualification_min_accuracy:.0%})")
    details = {"qualification": {"passed": passed, "rule": rule, "items": checks}}
    session.add(AssignmentScore(assignment_id=assignment.id, quality=right / len(checks) if checks else 0.0,
                                agreement=None, gold_right=right, gold_total=len(checks), details=details))
    return {"passed": passed, "right": right, "total": len(checks), "rule": rule, "items": checks}


def submitted_payload(assignment: Assignment, qualification: dict | None = None) -> dict[str, Any]:
    session = db.session
    annotations = session.scalars(select(Annotation).where(Annotation.assignment_id == assignment.id)
                                  .order_by(Annotation.id)).all() if assignment.id else []
    if qualification is None:
        score = session.get(AssignmentScore, assignment.id)
        if score is not None and "qualification" in score.details:
            q = score.details["qualification"]
            qualification = {"passed": q["passed"], "right": score.gold_right, "total": score.gold_total,
                             "rule": q["rule"], "items": q["items"]}
    body = {
        "assignment_id": assignment.id,
        "status": assignment.status,
        "submitted_at": assignment.submitted_at.isoformat() if assignment.submitted_at else None,
        "annotations": [{"item_id": a.item_id, "result": a.result, "seconds": a.seconds} for a in annotations],
    }
    if qualification is not None:
        body["qualification"] = qualification
    return body


def heartbeat(annotator_id: int, assignment_id: int) -> dict[str, Any]:
    """Extend a live lease by the project's lease time."""
    with db.transaction() as session:
        assignment = _owned(session, annotator_id, assignment_id)
        if assignment.status != "leased":
            raise Conflict(_lost_words(assignment))
        project = session.get(Project, assignment.project_id)
        assignment.lease_expires_at = utcnow() + dt.timedelta(seconds=project.lease_seconds)
        expires = assignment.lease_expires_at
        mt_id = assignment.micro_task_id
    dispatcher().extend(mt_id, annotator_id, _epoch(expires))
    return {"assignment_id": assignment_id, "lease_expires_at": expires.isoformat()}


def _lost_words(assignment: Assignment) -> str:
    return {
        "submitted": "this micro-task is submitted already",
        "skipped": "you skipped this micro-task",
        "expired": "your lease ran out; ask for new work",
        "released": "your lease was released by an operator",
    }.get(assignment.status, f"the lease is {assignment.status}")


def skip(annotator_id: int, assignment_id: int, reason: str = "") -> None:
    """Give a leased micro-task back, with an optional reason."""
    reason = (reason or "").strip()[:1000]
    with db.transaction() as session:
        assignment = _owned(session, annotator_id, assignment_id)
        if assignment.status != "leased":
            raise Conflict(_lost_words(assignment))
        _end_lease(session, assignment, "skipped")
        assignment.skip_reason = reason or None
        mt_id, project_id = assignment.micro_task_id, assignment.project_id
    dispatcher().release(mt_id, annotator_id, project_id)


def _end_lease(session, assignment: Assignment, status: str) -> None:
    assignment.status = status
    assignment.ended_at = utcnow()
    session.execute(update(MicroTask).where(MicroTask.id == assignment.micro_task_id)
                    .values(taken=MicroTask.taken - 1))


def expire_lease(micro_task_id: int, annotator_id: int, now: dt.datetime | None = None) -> bool:
    """End one lease that ran out, and give its slot back. False if it had not."""
    now = now or utcnow()
    with db.transaction() as session:
        assignment = session.scalar(select(Assignment).where(
            Assignment.micro_task_id == micro_task_id, Assignment.annotator_id == annotator_id).with_for_update())
        expired = assignment is not None and assignment.status == "leased" and assignment.lease_expires_at <= now
        if expired:
            _end_lease(session, assignment, "expired")
        project_id = assignment.project_id if assignment is not None else None
    if expired:
        dispatcher().release(micro_task_id, annotator_id, project_id)
    else:
        _reconcile_lease(micro_task_id, annotator_id, project_id)
    return expired


def _reconcile_lease(micro_task_id: int, annotator_id: int, project_id: int | None) -> None:
    """Redis says a lease is live or ran out; make it say what SQL says."""
    d = dispatcher()
    assignment = _assignment_of(micro_task_id, annotator_id)
    if assignment is None:
        if project_id is not None:
            d.release(micro_task_id, annotator_id, project_id)
    elif assignment.status == "leased":
        d.extend(micro_task_id, annotator_id, _epoch(assignment.lease_expires_at))
    elif assignment.status == "submitted":
        d.finish(micro_task_id, annotator_id, assignment.project_id)
    else:
        d.release(micro_task_id, annotator_id, assignment.project_id)
    db.session.rollback()


def reclaim_expired(limit: int = 500) -> int:
    """End leases that ran out (the periodic background job; also a few on the request path)."""
    now = utcnow()
    due = db.session.execute(select(Assignment.micro_task_id, Assignment.annotator_id).where(
        Assignment.status == "leased", Assignment.lease_expires_at <= now).limit(limit)).all()
    db.session.rollback()
    count = sum(expire_lease(mt, a, now) for mt, a in due)
    # Leases Redis still holds that SQL has ended already.
    for mt, a in dispatcher().expired(time.time(), limit):
        _reconcile_lease(mt, a, None)
    return count


def _reclaim_some() -> int:
    """The check on the request path: a few expired leases, found through Redis's index."""
    return sum(expire_lease(mt, a) for mt, a in dispatcher().expired(time.time(), limit=5))


RECLAIM_EVERY = 0.5  # seconds between the checks a process makes after a successful hand-out
_last_reclaim = [0.0]


def _reclaim_now_and_then() -> None:
    """`_reclaim_some` after a hand-out, at most every RECLAIM_EVERY seconds in this process:
    it is a Redis round trip, and an annotator who finds nothing checks at once anyway."""
    now = time.monotonic()
    if now - _last_reclaim[0] >= RECLAIM_EVERY:
        _last_reclaim[0] = now
        _reclaim_some()


# --- operators ---------------------------------------------------------------------------


def block(actor_id: int, user_id: int, reason: str) -> None:
    """Stop an annotator getting work; their live leases are released."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("say why the annotator is blocked: they will see it", field="reason")
    with db.transaction() as session:
        from .accounts import require_operator

        require_operator(session, actor_id)
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        user.blocked_at, user.blocked_reason = utcnow(), reason
        leases = list(session.scalars(select(Assignment).where(Assignment.annotator_id == user_id,
                                                               Assignment.status == "leased")))
        for assignment in leases:
            _end_lease(session, assignment, "released")
        released = [(a.micro_task_id, a.project_id) for a in leases]
        audit.record(session, actor_id=actor_id, action="block_user", target_type="user", target_id=user_id,
                     reason=reason, released=len(released))
    d = dispatcher()
    d.block(user_id)
    for mt_id, project_id in released:
        d.release(mt_id, user_id, project_id)


def unblock(actor_id: int, user_id: int, reason: str = "") -> None:
    with db.transaction() as session:
        from .accounts import require_operator

        require_operator(session, actor_id)
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        user.blocked_at = user.blocked_reason = None
        audit.record(session, actor_id=actor_id, action="unblock_user", target_type="user", target_id=user_id,
                     reason=reason.strip())
    dispatcher().unblock(user_id)


def pause(user_id: int, project_id: int) -> None:
    projects.pause_project(user_id, project_id)
    dispatcher().stop_project(project_id)


def archive(user_id: int, project_id: int) -> None:
    projects.archive_project(user_id, project_id)
    dispatcher().stop_project(project_id)


def queue_state(user_id: int, project_id: int) -> dict[str, Any]:
    session = db.session
    project = projects.visible_project(session, session.get(User, user_id), project_id)
    regular = MicroTask.is_qualification.is_(False)
    total, done, waiting = session.execute(select(
        func.count(MicroTask.id).filter(regular),
        func.count(MicroTask.id).filter(regular, MicroTask.status == "done"),
        func.count(MicroTask.id).filter(regular, MicroTask.status == "open", MicroTask.taken < MicroTask.overlap),
    ).where(MicroTask.project_id == project_id)).one()
    leased, submitted = session.execute(select(
        func.count(Assignment.id).filter(Assignment.status == "leased"),
        func.count(Assignment.id).filter(Assignment.status == "submitted"),
    ).where(Assignment.project_id == project_id)).one()
    hour_ago = utcnow() - dt.timedelta(hours=1)
    labels_last_hour = session.scalar(select(func.count(Annotation.id)).join(Assignment).where(
        Assignment.project_id == project_id, Annotation.created_at >= hour_ago))
    stats = dispatcher().stats(project_id)
    return {"project": project_id, "status": project.status, "micro_tasks": total, "micro_tasks_done": done,
            "micro_tasks_waiting": waiting, "assignments_live": leased, "assignments_submitted": submitted,
            "labels_last_hour": labels_last_hour,
            "queue": {"waiting": stats.waiting, "started": stats.started, "live": stats.extra["live"]}}


# --- rebuilding Redis from SQL ---------------------------------------------------------


def ensure_dispatch_state(wait_seconds: float = 30) -> None:
    """Rebuild the Redis state when it is missing (say after Redis restarted
    empty); other requests wait for the one that rebuilds."""
    d = dispatcher()
    if d.is_ready():
        return
    if d.lock_rebuild():
        try:
            if not d.is_ready():
                rebuild()
        finally:
            d.unlock_rebuild()
        return
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if d.is_ready():
            return
        time.sleep(0.05)
    raise Unavailable("the work queue is being rebuilt; ask again in a moment")


def rebuild() -> dict[str, int]:
    """Reconstruct the whole dispatch state from SQL (`flask queue rebuild`)."""
    d = dispatcher()
    d.clear()
    session = db.session
    live = list(session.scalars(select(Project).where(Project.status == "live", Project.archived_at.is_(None))))
    states = [_project_state(p, with_counts=True) for p in live]
    with_profile = (set(session.scalars(select(Profile.user_id)))
                    | set(session.scalars(select(SkillLevel.annotator_id)))
                    | set(session.scalars(select(Assignment.annotator_id).join(AssignmentScore).distinct())))
    annotators = annotator_states(with_profile)
    micro_tasks = [mt for p in live for mt in _micro_task_states(p.id)]
    leases = [LeaseState(a.micro_task_id, a.annotator_id, a.project_id, _epoch(a.lease_expires_at))
              for a in session.scalars(select(Assignment).where(Assignment.status == "leased"))]
    blocked = list(session.scalars(select(User.id).where(User.blocked_at.is_not(None))))
    # Finished micro-tasks whose scoring the lost Redis held in its inbox.
    unscored = list(session.scalars(
        select(MicroTask.id).distinct().join(Assignment, Assignment.micro_task_id == MicroTask.id)
        .outerjoin(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
        .where(MicroTask.status == "done", MicroTask.is_qualification.is_(False), Assignment.status == "submitted",
               AssignmentScore.assignment_id.is_(None))))
    session.rollback()
    d.load(states, micro_tasks, leases, blocked, annotators)
    if d.add_finished(unscored):
        enqueue("tasks.jobs.score_finished", job_id=f"score-finished-{uuid.uuid4().hex}")
    return {"projects": len(states), "micro_tasks": len(micro_tasks), "leases": len(leases), "blocked": len(blocked),
            "unscored": len(unscored)}


def update_project(user_id: int, project_id: int, raw: dict[str, Any]) -> None:
    """Change a project's settings; a live project's filters take effect on the next request for work."""
    projects.update_project(user_id, project_id, raw)
    project = db.session.get(Project, project_id)
    if project.status == "live" and project.archived_at is None:
        dispatcher().set_project(_project_state(project))
    db.session.rollback()
