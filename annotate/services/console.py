"""What the operator console reads: annotators and their history, queues and
leases, background jobs, and the audit log.

Read-only, except the retries, which put a failed background job back on
its RQ queue, and the RQ callbacks that record a background job's failure
(and a later success) in SQL, where the retries start from.
Every function but those two callbacks takes the operator's id and refuses anyone else.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import case, distinct, func, or_, select, update

from ..extensions import db, redis
from ..models import (Appeal, Assignment, AssignmentScore, AnnotatorScore, AuditEntry, BackgroundJob, LedgerEntry,
                      MicroTask, PayrollRun, Project, User, utcnow)
from ..queue import DEFAULT_QUEUE, enqueue
from . import audit
from .accounts import require_operator
from .errors import Conflict, NotFound
from .fairness import effective_rates, rate_per_hour

log = logging.getLogger(__name__)

# How to run a background job again when RQ no longer holds it: kind -> job function of the row's id.
# Other kinds keep their function and arguments in the row's params.
RETRY_FUNCTIONS = {"import": "tasks.jobs.run_import", "split": "tasks.jobs.split_project",
                   "export": "tasks.exports.run_export"}
# Kinds whose service writes its own status, success included.
SELF_RECORDED = ("import", "export")
KINDS = {"tasks.jobs.score_micro_task": "score", "tasks.jobs.score_finished": "score",
         "tasks.jobs.reestimate_project": "reestimate",
         "tasks.skills.recompute_micro_task_levels": "skills", "tasks.skills.recompute_project_levels": "skills",
         "tasks.skills.recompute_all_levels": "skills", "tasks.assist.train_builtin": "assist train",
         "tasks.assist.refresh_project": "assist refresh", "tasks.assist.reform_queue": "assist reform",
         "tasks.assist.backend_notify": "backend notify", "tasks.assist.backend_train": "backend train"}
PROJECT_FIRST = {"tasks.jobs.reestimate_project", "tasks.skills.recompute_project_levels", "tasks.assist.train_builtin",
                 "tasks.assist.refresh_project", "tasks.assist.reform_queue", "tasks.assist.backend_notify",
                 "tasks.assist.backend_train"}
MICRO_TASK_FIRST = {"tasks.jobs.score_micro_task", "tasks.skills.recompute_micro_task_levels"}
LIST_LIMIT = 200


def _money(session, ids: list[int]) -> dict[int, dict[str, dict[str, int]]]:
    """Per annotator and currency: pending (submitted, undecided), approved (in the ledger, not yet
    in a paid payroll run) and paid (in a paid payroll run), in minor units."""
    out: dict[int, dict[str, dict[str, int]]] = {}

    def slot(annotator_id: int, currency: str) -> dict[str, int]:
        return out.setdefault(annotator_id, {}).setdefault(currency, {"pending": 0, "approved": 0, "paid": 0})

    base = case((MicroTask.is_qualification.is_(True), Project.qualification_pay), else_=Project.pay_per_micro_task)
    for annotator_id, currency, amount in session.execute(
            select(Assignment.annotator_id, Project.currency, func.sum(base))
            .join(MicroTask, MicroTask.id == Assignment.micro_task_id)
            .join(Project, Project.id == Assignment.project_id)
            .where(Assignment.annotator_id.in_(ids), Assignment.status == "submitted",
                   Assignment.decision == "pending")
            .group_by(Assignment.annotator_id, Project.currency)):
        slot(annotator_id, currency)["pending"] += int(amount or 0)
    paid = PayrollRun.status == "paid"
    for annotator_id, currency, approved, paid_amount in session.execute(
            select(LedgerEntry.annotator_id, LedgerEntry.currency,
                   func.sum(case((paid, 0), else_=LedgerEntry.amount)),
                   func.sum(case((paid, LedgerEntry.amount), else_=0)))
            .outerjoin(PayrollRun, PayrollRun.id == LedgerEntry.payroll_run_id)
            .where(LedgerEntry.annotator_id.in_(ids))
            .group_by(LedgerEntry.annotator_id, LedgerEntry.currency)):
        money = slot(annotator_id, currency)
        money["approved"] += int(approved or 0)
        money["paid"] += int(paid_amount or 0)
    return out


def _rates(ids: list[int]) -> dict[int, dict[str, int | None]]:
    """Effective hourly rate per annotator and currency (see annotate.services.fairness)."""
    totals: dict[tuple[int, str], list[float]] = {}
    for row in effective_rates(ids):
        acc = totals.setdefault((row.annotator_id, row.currency), [0.0, 0])
        acc[0] += row.seconds
        acc[1] += row.earned
    out: dict[int, dict[str, int | None]] = {}
    for (annotator_id, currency), (seconds, earned) in totals.items():
        rate = rate_per_hour(int(earned), seconds)
        if rate is not None:
            out.setdefault(annotator_id, {})[currency] = rate
    return out


def _summaries(session, users: list[User]) -> list[dict[str, Any]]:
    ids = [u.id for u in users]
    if not ids:
        return []
    work = {row[0]: row[1:] for row in session.execute(
        select(Assignment.annotator_id,
               func.count(Assignment.id).filter(Assignment.status == "submitted"),
               func.count(distinct(Assignment.project_id)).filter(Assignment.status == "submitted"),
               func.count(Assignment.id).filter(Assignment.decision == "rejected"),
               func.count(Assignment.id).filter(Assignment.status == "leased"),
               func.max(Assignment.leased_at), func.max(Assignment.submitted_at))
        .where(Assignment.annotator_id.in_(ids)).group_by(Assignment.annotator_id))}
    quality = dict(session.execute(
        select(AnnotatorScore.annotator_id,
               func.sum(AnnotatorScore.quality * AnnotatorScore.n_items) / func.nullif(func.sum(AnnotatorScore.n_items), 0))
        .where(AnnotatorScore.annotator_id.in_(ids)).group_by(AnnotatorScore.annotator_id)).all())
    money, rates = _money(session, ids), _rates(ids)
    out = []
    for user in users:
        submissions, projects_worked, rejected, leases, leased_at, submitted_at = work.get(
            user.id, (0, 0, 0, 0, None, None))
        moments = [m for m in (user.last_active_at, leased_at, submitted_at) if m is not None]
        out.append({
            "id": user.id, "name": user.name, "email": user.email, "blocked": user.is_blocked,
            "blocked_reason": user.blocked_reason, "blocked_at": user.blocked_at,
            "submissions": submissions, "projects": projects_worked, "rejected": rejected, "live_leases": leases,
            "quality": float(quality[user.id]) if quality.get(user.id) is not None else None,
            "money": money.get(user.id, {}), "rates": rates.get(user.id, {}),
            "last_active": max(moments) if moments else None,
        })
    return out


# --------------------------------------------------------------------------
# Annotators
# --------------------------------------------------------------------------


def annotators(operator_id: int, query: str = "", *, blocked_only: bool = False,
               limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Annotators whose email or name contains `query`, newest first, with their work and money."""
    session = db.session
    require_operator(session, operator_id)
    stmt = select(User).where(User.is_annotator.is_(True)).order_by(User.id.desc()).limit(limit)
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(User.email).like(pattern), func.lower(User.name).like(pattern)))
    if blocked_only:
        stmt = stmt.where(User.blocked_at.is_not(None))
    out = _summaries(session, list(session.scalars(stmt)))
    session.rollback()
    return out


def annotator(operator_id: int, user_id: int, limit: int = LIST_LIMIT) -> dict[str, Any]:
    """One annotator: the summary, quality per project, assignments, ledger, appeals and audit entries."""
    session = db.session
    require_operator(session, operator_id)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    summary = _summaries(session, [user])[0]
    titles = dict(session.execute(select(Project.id, Project.title)).all())
    scores = [{"project_id": s.project_id, "title": titles.get(s.project_id, ""), "quality": s.quality,
               "agreement": s.agreement, "gold_right": s.gold_right, "gold_total": s.gold_total,
               "n_items": s.n_items, "updated_at": s.updated_at}
              for s in session.scalars(select(AnnotatorScore).where(AnnotatorScore.annotator_id == user_id)
                                       .order_by(AnnotatorScore.project_id))]
    earned = dict(session.execute(select(LedgerEntry.assignment_id, func.sum(LedgerEntry.amount))
                                  .where(LedgerEntry.annotator_id == user_id, LedgerEntry.assignment_id.is_not(None))
                                  .group_by(LedgerEntry.assignment_id)).all())
    appeals = {a.assignment_id: a for a in session.scalars(select(Appeal).where(Appeal.annotator_id == user_id))}
    history = []
    for a, score, project in session.execute(
            select(Assignment, AssignmentScore, Project)
            .outerjoin(AssignmentScore, AssignmentScore.assignment_id == Assignment.id)
            .join(Project, Project.id == Assignment.project_id)
            .where(Assignment.annotator_id == user_id)
            .order_by(Assignment.leased_at.desc(), Assignment.id.desc()).limit(limit)):
        appeal = appeals.get(a.id)
        history.append({
            "assignment_id": a.id, "project_id": a.project_id, "title": project.title, "currency": project.currency,
            "micro_task_id": a.micro_task_id, "status": a.status, "leased_at": a.leased_at,
            "submitted_at": a.submitted_at, "active_seconds": a.active_seconds, "decision": a.decision,
            "rule": a.decision_rule, "reason": a.decision_reason, "quality": score.quality if score else None,
            "earned": int(earned.get(a.id) or 0), "appeal": appeal.status if appeal else None,
            "appeal_id": appeal.id if appeal else None,
        })
    ledger = [{"id": e.id, "kind": e.kind, "amount": e.amount, "currency": e.currency, "memo": e.memo,
               "project_id": e.project_id, "assignment_id": e.assignment_id, "created_at": e.created_at,
               "payroll_run_id": e.payroll_run_id}
              for e in session.scalars(select(LedgerEntry).where(LedgerEntry.annotator_id == user_id)
                                       .order_by(LedgerEntry.id.desc()).limit(limit))]
    theirs = select(Assignment.id).where(Assignment.annotator_id == user_id)
    their_appeals = select(Appeal.id).where(Appeal.annotator_id == user_id)
    audit = _audit_rows(session, select(AuditEntry).where(or_(
        (AuditEntry.target_type == "user") & (AuditEntry.target_id == user_id),
        AuditEntry.actor_id == user_id,
        (AuditEntry.target_type == "assignment") & AuditEntry.target_id.in_(theirs),
        (AuditEntry.target_type == "appeal") & AuditEntry.target_id.in_(their_appeals),
    )).order_by(AuditEntry.id.desc()).limit(limit))
    out = {"user": {**summary, "roles": user.roles, "created_at": user.created_at,
                    "last_login_at": user.last_login_at},
           "scores": scores, "history": history, "ledger": ledger, "audit": audit}
    session.rollback()
    return out


# --------------------------------------------------------------------------
# Queues and leases
# --------------------------------------------------------------------------


def queues(operator_id: int, lease_limit: int = LIST_LIMIT) -> dict[str, Any]:
    """Per project the micro-tasks waiting, with live leases and done; the live leases themselves."""
    session = db.session
    require_operator(session, operator_id)
    regular = MicroTask.is_qualification.is_(False)
    counts = {row[0]: row[1:] for row in session.execute(
        select(MicroTask.project_id, func.count(MicroTask.id).filter(regular),
               func.count(MicroTask.id).filter(regular, MicroTask.status == "open",
                                               MicroTask.taken < MicroTask.overlap),
               func.count(MicroTask.id).filter(regular, MicroTask.status == "done"))
        .group_by(MicroTask.project_id))}
    leased = {row[0]: row[1:] for row in session.execute(
        select(Assignment.project_id, func.count(Assignment.id), func.count(distinct(Assignment.micro_task_id)))
        .where(Assignment.status == "leased").group_by(Assignment.project_id))}
    rows = []
    for project in session.scalars(select(Project).where(
            Project.archived_at.is_(None), or_(Project.status == "live", Project.id.in_(list(counts))))
            .order_by(Project.id)):
        total, waiting, done = counts.get(project.id, (0, 0, 0))
        leases, leased_micro_tasks = leased.get(project.id, (0, 0))
        rows.append({"project_id": project.id, "title": project.title, "status": project.status,
                     "micro_tasks": total, "waiting": waiting, "leased": leased_micro_tasks, "done": done,
                     "leases": leases, "dispatch_waiting": None})
    now = utcnow()
    leases = [{"assignment_id": a.id, "annotator_id": a.annotator_id, "name": name, "project_id": a.project_id,
               "title": title, "micro_task_id": a.micro_task_id, "leased_at": a.leased_at,
               "lease_expires_at": a.lease_expires_at, "expired": a.lease_expires_at <= now}
              for a, name, title in session.execute(
                  select(Assignment, User.name, Project.title)
                  .join(User, User.id == Assignment.annotator_id).join(Project, Project.id == Assignment.project_id)
                  .where(Assignment.status == "leased")
                  .order_by(Assignment.lease_expires_at, Assignment.id).limit(lease_limit))]
    session.rollback()
    dispatch_error = None
    try:
        from .work import dispatcher

        d = dispatcher()
        for row in rows:
            if row["status"] == "live":
                row["dispatch_waiting"] = d.stats(row["project_id"]).waiting
    except RedisError as error:
        dispatch_error = f"Redis did not answer: {error}"
    return {"projects": rows, "leases": leases, "now": now, "dispatch_error": dispatch_error}


def rq_state(operator_id: int, failed_limit: int = 50) -> dict[str, Any]:
    """RQ's queues, workers and failed background jobs, as Redis has them now."""
    require_operator(db.session, operator_id)
    db.session.rollback()
    try:
        conn = redis.client
        found = {q.name: q for q in Queue.all(connection=conn)}
        found.setdefault(DEFAULT_QUEUE, Queue(DEFAULT_QUEUE, connection=conn))
        queues_ = []
        failed = []
        for name in sorted(found):
            q = found[name]
            registry = FailedJobRegistry(queue=q)
            queues_.append({"name": name, "queued": q.count, "started": StartedJobRegistry(queue=q).count,
                            "scheduled": ScheduledJobRegistry(queue=q).count, "failed": registry.count})
            ids = registry.get_job_ids(0, failed_limit - 1)
            for job in Job.fetch_many(ids, connection=conn):
                if job is not None:
                    failed.append(_rq_job(job))
        workers = [{"name": w.name, "state": w.get_state(), "queues": ", ".join(w.queue_names()),
                    "current_job": w.get_current_job_id(), "last_heartbeat": w.last_heartbeat,
                    "successful": w.successful_job_count, "failed": w.failed_job_count}
                   for w in Worker.all(connection=conn)]
    except RedisError as error:
        return {"ok": False, "error": f"Redis did not answer: {error}", "queues": [], "workers": [], "failed": []}
    failed.sort(key=lambda j: j["ended_at"] or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
    return {"ok": True, "error": None, "queues": queues_, "workers": workers, "failed": failed[:failed_limit]}


def _rq_job(job: Job) -> dict[str, Any]:
    result = job.latest_result()
    error = (result.exc_string if result is not None and result.exc_string else "") or ""
    ended = job.ended_at
    if ended is not None and ended.tzinfo is None:
        ended = ended.replace(tzinfo=dt.UTC)
    return {"id": job.id, "queue": job.origin, "function": job.func_name, "args": repr(job.args)[:200],
            "error": error, "error_line": _last_line(error), "ended_at": ended}


def _status(job: Job) -> str:
    status = job.get_status()
    return getattr(status, "value", status)  # rq's JobStatus is a str enum


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def retry_rq_job(operator_id: int, rq_id: str) -> None:
    """Put a failed RQ job back on its queue; the job is idempotent, so running it again is safe.
    A job with a row in SQL is retried from the row, like the failed background jobs page does."""
    require_operator(db.session, operator_id)
    row_id = db.session.scalar(select(BackgroundJob.id).where(BackgroundJob.rq_id == rq_id))
    db.session.rollback()
    if row_id is not None:
        retry_background_job(operator_id, row_id)
        return
    conn = redis.client
    try:
        job = Job.fetch(rq_id, connection=conn)
    except NoSuchJobError:
        raise NotFound(f"RQ has no background job {rq_id}") from None
    try:
        FailedJobRegistry(job.origin, connection=conn).requeue(job)
    except InvalidJobOperation:
        raise Conflict(f"background job {rq_id} is {_status(job)}, not failed: there is nothing to retry") from None
    log.info("operator %s retried RQ job %s (%s)", operator_id, rq_id, job.func_name)


# --------------------------------------------------------------------------
# Background jobs as SQL records them
# --------------------------------------------------------------------------


def _retry_refusal(job: BackgroundJob) -> str | None:
    if job.kind == "import" and job.errors:
        return "refused for problems in the upload: a retry changes nothing, upload a fixed file"
    if job.kind == "export" and job.errors:
        return "refused because the project no longer offers its format: a retry changes nothing, export again"
    return None


def _what(job: BackgroundJob) -> str:
    function = (job.params or {}).get("function")
    if not function or job.kind in SELF_RECORDED:
        return ""
    return f"{function}({', '.join(repr(a) for a in (job.params or {}).get('args', []))})"


def failed_background_jobs(operator_id: int, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """Background jobs whose SQL record says failed, newest first, with their errors."""
    session = db.session
    require_operator(session, operator_id)
    rows = session.execute(
        select(BackgroundJob, Project.title, User.email)
        .outerjoin(Project, Project.id == BackgroundJob.project_id)
        .outerjoin(User, User.id == BackgroundJob.user_id)
        .where(BackgroundJob.status == "failed")
        .order_by(BackgroundJob.finished_at.desc(), BackgroundJob.id.desc()).limit(limit)).all()
    out = [{"id": job.id, "rq_id": job.rq_id, "kind": job.kind, "project_id": job.project_id, "title": title,
            "user": email, "error": job.error or "", "errors": (job.errors or [])[:5], "what": _what(job),
            "more_errors": max(0, len(job.errors or []) - 5), "created_at": job.created_at,
            "finished_at": job.finished_at, "not_retryable": _retry_refusal(job)}
           for job, title, email in rows]
    session.rollback()
    _rq_plans(out)
    return out


def _rq_plans(rows: list[dict[str, Any]]) -> None:
    """Whether RQ will try each failed background job again by itself, and how many more times."""
    ids = [r["rq_id"] for r in rows if r["rq_id"]]
    try:
        found = {j.id: j for j in Job.fetch_many(ids, connection=redis.client) if j is not None} if ids else {}
        # The scheduled try, and those left after it.
        plans = {rq_id: (job.retries_left or 0) + 1 for rq_id, job in found.items() if _status(job) == "scheduled"}
    except RedisError as error:
        log.warning("could not read RQ's retries of failed background jobs: %s", error)
        plans = {}
    for r in rows:
        r["rq_retries_left"] = plans.get(r["rq_id"])


def _claim(job_id: int) -> BackgroundJob:
    """failed -> queued in one UPDATE: of two clicks on Retry, only one gets the row."""
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        if job is None:
            raise NotFound(f"no background job {job_id}")
        refusal = _retry_refusal(job)
        if job.status == "failed" and refusal:
            raise Conflict(f"background job {job_id} was {refusal}")
        # A row written before RQ ids were kept gets one, so that the run's outcome finds it.
        rq_id = func.coalesce(BackgroundJob.rq_id, f"retry-{job_id}-{uuid.uuid4().hex[:12]}")
        claimed = session.execute(
            update(BackgroundJob).where(BackgroundJob.id == job_id, BackgroundJob.status == "failed")
            .values(status="queued", finished_at=None, rq_id=rq_id)).rowcount
        if not claimed:
            session.refresh(job)
            raise Conflict(f"background job {job_id} is {job.status}, not failed: it is not run again")
        session.refresh(job)
        session.expunge(job)
    return job


def _unclaim(job_id: int, error: str) -> None:
    with db.transaction() as session:
        session.execute(update(BackgroundJob).where(BackgroundJob.id == job_id, BackgroundJob.status == "queued")
                        .values(status="failed", finished_at=utcnow(), error=error))


def retry_background_job(operator_id: int, job_id: int) -> str:
    """Run a failed background job again, from its row in SQL: the row goes from failed to
    queued first (so a second click is refused), then RQ runs it. Returns how: "requeued" (RQ
    still had the failed job), "moved up" (RQ was waiting to retry it by itself: now it runs at
    once), "running" (RQ is running it already) or "enqueued" (from the row alone)."""
    require_operator(db.session, operator_id)
    db.session.rollback()
    job = _claim(job_id)
    try:
        how = _put_back(job)
    except RedisError as error:
        _unclaim(job_id, f"the retry could not reach Redis ({error}); the background job did not run again")
        raise Conflict(f"background job {job_id} was not retried: Redis did not answer ({error})") from None
    except Conflict as error:
        _unclaim(job_id, job.error or "")
        raise error
    _audit_retry(operator_id, job, how)
    log.info("operator %s retried background job %s (%s): %s", operator_id, job_id, job.kind, how)
    return how


def _put_back(job: BackgroundJob) -> str:
    conn = redis.client
    rq_job = None
    if job.rq_id:
        try:
            rq_job = Job.fetch(job.rq_id, connection=conn)
        except NoSuchJobError:
            rq_job = None
    if rq_job is not None:
        status = _status(rq_job)
        if status in ("queued", "started", "deferred"):
            return "running"
        if status == "scheduled":
            ScheduledJobRegistry(queue=Queue(rq_job.origin, connection=conn)).remove(rq_job)
            Queue(rq_job.origin, connection=conn).enqueue_job(rq_job)
            return "moved up"
        if status == "failed":
            FailedJobRegistry(rq_job.origin, connection=conn).requeue(rq_job)
            return "requeued"
        rq_job.delete()  # finished, stopped or canceled in RQ: start over from the row
    if job.kind in RETRY_FUNCTIONS:
        function, args = RETRY_FUNCTIONS[job.kind], [job.id]
    elif (job.params or {}).get("function"):
        function, args = job.params["function"], list(job.params.get("args") or [])
    else:
        raise Conflict(f"background job {job.id} ({job.kind}) does not say which function to run")
    # No automatic retries: the operator sees this run's outcome.
    enqueue(function, *args, job_id=job.rq_id, retries=0)
    return "enqueued"


def _audit_retry(operator_id: int, job: BackgroundJob, how: str) -> None:
    with db.transaction() as session:
        audit.record(session, actor_id=operator_id, action="retry_background_job", target_type="background_job",
                     target_id=job.id, kind=job.kind, rq_id=job.rq_id, how=how, error=job.error or "")


# --------------------------------------------------------------------------
# Recording background jobs' outcomes (RQ callbacks, see tasks.jobs)
# --------------------------------------------------------------------------


def _kind(function: str) -> str:
    return KINDS.get(function) or function.rpartition(".")[2][:32]


def _project_of(session, function: str, args: list) -> int | None:
    if not args or not isinstance(args[0], int):
        return None
    if function in PROJECT_FIRST:
        return session.scalar(select(Project.id).where(Project.id == args[0]))
    if function in MICRO_TASK_FIRST:
        return session.scalar(select(MicroTask.project_id).where(MicroTask.id == args[0]))
    return None


def record_job_failure(rq_id: str, function: str, args: list, error: str) -> int:
    """The row of a failed attempt: the job's own (imports, splits, exports) marked failed unless its
    service recorded that itself, in its own words for the requester; or a new row holding the
    function and arguments to run again."""
    with db.transaction() as session:
        job = session.scalar(select(BackgroundJob).where(BackgroundJob.rq_id == rq_id))
        if job is None:
            job = BackgroundJob(rq_id=rq_id, kind=_kind(function), project_id=_project_of(session, function, args),
                                params={"function": function, "args": args})
            session.add(job)
        elif job.status == "failed":
            return job.id
        job.status, job.finished_at, job.error = "failed", utcnow(), error[:4000]
        session.flush()
        return job.id


def record_job_success(rq_id: str) -> None:
    """A run that succeeded clears a recorded failure. Imports and exports keep their own status."""
    with db.transaction() as session:
        session.execute(update(BackgroundJob).where(
            BackgroundJob.rq_id == rq_id, BackgroundJob.kind.not_in(SELF_RECORDED),
            BackgroundJob.status != "finished").values(status="finished", finished_at=utcnow()))


# --------------------------------------------------------------------------
# The audit log
# --------------------------------------------------------------------------


def _audit_rows(session, stmt) -> list[dict[str, Any]]:
    entries = list(session.scalars(stmt))
    actors = {u.id: u for u in session.scalars(select(User).where(
        User.id.in_({e.actor_id for e in entries if e.actor_id is not None})))} if entries else {}
    return [{"id": e.id, "created_at": e.created_at, "actor_id": e.actor_id,
             "actor": actors[e.actor_id].name if e.actor_id in actors else "",
             "actor_email": actors[e.actor_id].email if e.actor_id in actors else "",
             "action": e.action, "target_type": e.target_type, "target_id": e.target_id, "reason": e.reason,
             "details": e.details or {}} for e in entries]


def audit_log(operator_id: int, *, action: str = "", actor: str = "", target_type: str = "",
              target_id: int | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
              before: int | None = None, limit: int = 100) -> dict[str, Any]:
    """Audit entries, newest first, filtered; `before` (an entry id) pages back."""
    session = db.session
    require_operator(session, operator_id)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if target_type:
        stmt = stmt.where(AuditEntry.target_type == target_type)
    if target_id is not None:
        stmt = stmt.where(AuditEntry.target_id == target_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.created_at < until)
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    actor = actor.strip()
    if actor.isdigit():
        stmt = stmt.where(AuditEntry.actor_id == int(actor))
    elif actor:
        pattern = f"%{actor.lower()}%"
        stmt = stmt.where(AuditEntry.actor_id.in_(select(User.id).where(
            or_(func.lower(User.email).like(pattern), func.lower(User.name).like(pattern)))))
    entries = _audit_rows(session, stmt)
    more = len(entries) > limit
    entries = entries[:limit]
    out = {"entries": entries, "next_before": entries[-1]["id"] if more else None,
           "actions": list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))),
           "target_types": list(session.scalars(select(AuditEntry.target_type).distinct()
                                                .order_by(AuditEntry.target_type)))}
    session.rollback()
    return out


# --------------------------------------------------------------------------
# The front page
# --------------------------------------------------------------------------


def overview(operator_id: int) -> dict[str, Any]:
    """The numbers an operator checks first."""
    from .reviews import overdue_reviews

    session = db.session
    require_operator(session, operator_id)
    out = {
        "annotators": session.scalar(select(func.count(User.id)).where(User.is_annotator.is_(True))),
        "blocked": session.scalar(select(func.count(User.id)).where(User.blocked_at.is_not(None))),
        "live_projects": session.scalar(select(func.count(Project.id)).where(
            Project.status == "live", Project.archived_at.is_(None))),
        "live_leases": session.scalar(select(func.count(Assignment.id)).where(Assignment.status == "leased")),
        "pending_reviews": session.scalar(select(func.count(Assignment.id)).where(
            Assignment.status == "submitted", Assignment.decision == "pending")),
        "escalated_appeals": session.scalar(select(func.count(Appeal.id)).where(Appeal.status == "escalated")),
        "failed_background_jobs": session.scalar(select(func.count(BackgroundJob.id)).where(
            BackgroundJob.status == "failed")),
    }
    session.rollback()
    out["overdue_reviews"] = len(overdue_reviews(operator_id))
    return out
