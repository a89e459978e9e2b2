"""The operator console: annotators, reviews and appeals, queues, background
jobs, project progress, fairness and the audit log; and rq-dashboard,
mounted under /console/rq behind operator login.

Every page and action is for operators only.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, abort, current_app, flash, redirect, render_template, request,
                   url_for)
from flask_login import current_user

from ..extensions import csrf, login_manager, redis
from ..services import console, fairness, mlbackends, projects, reviews, skills, work
from ..services.errors import DomainError, Invalid
from .access import operator_only
from .projects import duration, money

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console")

RQ_DASHBOARD_PREFIX = "/console/rq"
# How console.retry_background_job put a background job back, in the operator's words.
RETRIED = {"requeued": "is back on its queue", "moved up": "was waiting for RQ's own next try: it runs now instead",
           "running": "is already on its queue in RQ, so it was not queued twice",
           "enqueued": "is queued again from its record in the database"}


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"money": money, "duration": duration, "rq_dashboard": "rq_dashboard.queues_overview"
            in current_app.view_functions}


# --- rq-dashboard, behind operator login -----------------------------------------------


@bp.record_once
def _mount_rq_dashboard(state) -> None:
    app: Flask = state.app
    if not app.config.get("RQ_DASHBOARD", True):
        return
    try:
        import rq_dashboard
    except ImportError:  # optional: our own pages cover queues and failed jobs
        log.warning("rq-dashboard is not installed; /console/rq is not mounted")
        return
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=RQ_DASHBOARD_PREFIX)
    # Its pages post with jQuery and no CSRF token; _guard_rq_dashboard checks the origin instead.
    csrf.exempt(rq_dashboard.blueprint)
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith("rq_dashboard."):
            app.view_functions[endpoint] = operator_only(view)
    app.before_request(_guard_rq_dashboard)


def _guard_rq_dashboard():
    """Operators only; state changes only from our own pages; connect to our Redis on first use."""
    if request.blueprint != "rq_dashboard":
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_operator:
        abort(403)
    # requeue_all also answers GET, so it is guarded like a POST.
    if request.method not in ("GET", "HEAD", "OPTIONS") or request.endpoint == "rq_dashboard.requeue_all":
        source = request.headers.get("Origin") or request.headers.get("Referer") or ""
        if urlsplit(source).netloc != request.host:
            abort(403, "rq-dashboard changes are accepted from this site's own pages only")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if getattr(app, "redis_conn", None) is None:
        import rq_dashboard.web

        app.config["RQ_DASHBOARD_REDIS_URL"] = redis.url
        rq_dashboard.web.setup_rq_connection(app)
    return None


# --- the front page -------------------------------------------------------------------


@bp.route("/")
@operator_only
def index():
    return render_template("console/index.html", counts=console.overview(current_user.id))


# --- annotators ---------------------------------------------------------------------


@bp.route("/annotators")
@operator_only
def annotators():
    query = request.args.get("q", "")
    blocked = request.args.get("blocked") == "1"
    return render_template("console/annotators.html", q=query, blocked=blocked,
                           annotators=console.annotators(current_user.id, query, blocked_only=blocked))


def _render_annotator(user_id: int, error: DomainError | None = None):
    page = render_template("console/annotator.html", a=console.annotator(current_user.id, user_id), error=error)
    return page, (error.status if error else 200)


@bp.route("/annotators/<int:user_id>")
@operator_only
def annotator(user_id: int):
    return _render_annotator(user_id)


@bp.route("/annotators/<int:user_id>/block", methods=["POST"])
@operator_only
def block(user_id: int):
    try:
        work.block(current_user.id, user_id, request.form.get("reason", ""))
    except DomainError as error:
        return _render_annotator(user_id, error)
    flash("Blocked: their leases are released, and they see your reason when they ask for work.")
    return redirect(url_for(".annotator", user_id=user_id))


@bp.route("/annotators/<int:user_id>/unblock", methods=["POST"])
@operator_only
def unblock(user_id: int):
    try:
        work.unblock(current_user.id, user_id, request.form.get("reason", ""))
    except DomainError as error:
        return _render_annotator(user_id, error)
    flash("Unblocked: they can ask for work again.")
    return redirect(url_for(".annotator", user_id=user_id))


# --- skills ------------------------------------------------------------------------------


def _render_skills(error: DomainError | None = None, form: dict | None = None):
    page = render_template("console/skills.html", skills=skills.list_skills(), error=error, form=form or {})
    return page, (error.status if error else 200)


@bp.route("/skills", methods=["GET", "POST"])
@operator_only
def skills_page():
    if request.method == "GET":
        return _render_skills()
    try:
        skills.create_skill(current_user.id, request.form.get("name"), request.form.get("description", ""))
    except DomainError as error:
        return _render_skills(error, request.form)
    flash(f"Skill {request.form.get('name', '').strip()!r} defined.")
    return redirect(url_for(".skills_page"))


@bp.route("/skills/recompute", methods=["POST"])
@operator_only
def recompute_skills():
    skills.queue_recompute(current_user.id)
    flash("Every level is being recomputed from its evidence in the background; adjustments are kept.")
    return redirect(url_for(".skills_page"))


def _render_skill(skill_id: int, error: DomainError | None = None, form: dict | None = None):
    query = request.args.get("q", "")
    page = render_template("console/skill.html", skill=skills.get_skill(skill_id), q=query, error=error,
                           levels=skills.skill_levels(current_user.id, skill_id, query), form=form or {})
    return page, (error.status if error else 200)


@bp.route("/skills/<int:skill_id>")
@operator_only
def skill(skill_id: int):
    return _render_skill(skill_id)


@bp.route("/skills/<int:skill_id>/levels", methods=["POST"])
@operator_only
def adjust_level(skill_id: int):
    form = request.form
    try:
        annotator_id = skills.find_annotator(form.get("annotator", ""))
        view = skills.adjust_level(current_user.id, annotator_id, skill_id, form.get("level", ""),
                                   form.get("reason", ""))
    except DomainError as error:
        return _render_skill(skill_id, error, form)
    flash(f"Level set to {view.level}: logged with your reason; it applies from the annotator's next request for work.")
    return redirect(url_for(".skill", skill_id=skill_id))


# --- reviews past their window and escalated appeals ---------------------------------------


@bp.route("/reviews")
@operator_only
def review_queue():
    return render_template("console/reviews.html", appeals=reviews.escalated_appeals(current_user.id),
                           overdue=reviews.overdue_reviews(current_user.id))


def _render_review(assignment_id: int, error: DomainError | None = None, form: dict | None = None):
    page = render_template("console/review.html", review=reviews.review_detail(current_user.id, assignment_id),
                           error=error, form=form or {})
    return page, (error.status if error else 200)


@bp.route("/reviews/<int:assignment_id>")
@operator_only
def review(assignment_id: int):
    return _render_review(assignment_id)


@bp.route("/reviews/<int:assignment_id>/approve", methods=["POST"])
@operator_only
def approve_overdue(assignment_id: int):
    try:
        reviews.approve_as_operator(current_user.id, assignment_id, request.form.get("reason", ""))
    except DomainError as error:
        return _render_review(assignment_id, error, request.form)
    flash(f"Approved assignment {assignment_id}: the worker is paid and reads your reason.")
    return redirect(url_for(".review_queue"))


@bp.route("/reviews/<int:assignment_id>/appeals/<int:appeal_id>", methods=["POST"])
@operator_only
def decide_appeal(assignment_id: int, appeal_id: int):
    appeal = reviews.review_detail(current_user.id, assignment_id)["appeal"]
    if appeal is None or appeal["appeal_id"] != appeal_id:
        abort(404, f"assignment {assignment_id} has no appeal {appeal_id}")
    grant = request.form.get("grant") == "1"
    try:
        status = reviews.decide_appeal(current_user.id, appeal_id, grant, request.form.get("response", ""))
    except DomainError as error:
        return _render_review(assignment_id, error, request.form)
    flash(f"Appeal {status}: assignment {assignment_id} is "
          f"{'approved and paid' if status == 'granted' else 'still rejected'}. The decision is final and logged.")
    return redirect(url_for(".review_queue"))


# --- queues and background jobs -----------------------------------------------------


@bp.route("/queues")
@operator_only
def queues():
    return render_template("console/queues.html", state=console.queues(current_user.id),
                           rq=console.rq_state(current_user.id))


@bp.route("/queues/failed/<path:rq_id>/retry", methods=["POST"])
@operator_only
def retry_rq_job(rq_id: str):
    try:
        console.retry_rq_job(current_user.id, rq_id)
    except DomainError as error:
        flash(error.message)
    else:
        flash(f"Background job {rq_id} is queued again.")
    return redirect(url_for(".queues"))


@bp.route("/jobs")
@operator_only
def jobs():
    return render_template("console/jobs.html", jobs=console.failed_background_jobs(current_user.id))


@bp.route("/jobs/<int:job_id>/retry", methods=["POST"])
@operator_only
def retry_job(job_id: int):
    try:
        how = console.retry_background_job(current_user.id, job_id)
    except DomainError as error:
        flash(error.message)
    else:
        flash(f"Background job {job_id} {RETRIED[how]}; it leaves this list when a worker has run it.")
    return redirect(url_for(".jobs"))


# --- projects, fairness, audit ---------------------------------------------------------


@bp.route("/projects")
@operator_only
def project_list():
    return render_template("console/projects.html", projects=projects.list_projects(current_user.id),
                           state={row["project_id"]: row for row in console.queues(current_user.id)["projects"]})


@bp.route("/projects/<int:project_id>")
@operator_only
def project(project_id: int):
    return render_template("console/project.html", project=projects.get_project(current_user.id, project_id))


@bp.route("/fairness")
@operator_only
def fairness_page():
    return render_template("console/fairness.html", report=fairness.report(current_user.id))


# --- the ML backends projects may call -------------------------------------------------------


def _render_backends(error: DomainError | None = None, form: dict | None = None):
    page = render_template("console/ml_backends.html", backends=mlbackends.list_backends(), error=error,
                           form=form or {})
    return page, (error.status if error else 200)


@bp.route("/ml-backends", methods=["GET", "POST"])
@operator_only
def ml_backends():
    if request.method == "GET":
        return _render_backends()
    try:
        mlbackends.add_backend(current_user.id, request.form.get("name", ""), request.form.get("url", ""))
    except DomainError as error:
        return _render_backends(error, request.form)
    flash("ML backend added: requesters can now point projects at it.")
    return redirect(url_for(".ml_backends"))


@bp.route("/ml-backends/<int:backend_id>/check", methods=["POST"])
@operator_only
def check_ml_backend(backend_id: int):
    result = mlbackends.check_backend(current_user.id, backend_id)
    flash("It answered /health." if result["ok"] else f"It did not answer: {result['error']}")
    return redirect(url_for(".ml_backends"))


@bp.route("/ml-backends/<int:backend_id>/remove", methods=["POST"])
@operator_only
def remove_ml_backend(backend_id: int):
    try:
        mlbackends.remove_backend(current_user.id, backend_id)
    except DomainError as error:
        return _render_backends(error)
    flash("ML backend removed from the list.")
    return redirect(url_for(".ml_backends"))


def _day(value: str, field: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise Invalid(f"{field} must be a date like 2030-05-01, not {value!r}", field=field) from None


def _whole(value: str, field: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise Invalid(f"{field} must be a whole number, not {value!r}", field=field)
    return int(value)


@bp.route("/audit")
@operator_only
def audit():
    args = request.args
    filters = {name: args.get(name, "").strip() for name in ("action", "actor", "target_type", "target_id",
                                                             "since", "until")}
    error = None
    try:
        until = _day(filters["until"], "until")
        log_page = console.audit_log(
            current_user.id, action=filters["action"], actor=filters["actor"], target_type=filters["target_type"],
            target_id=_whole(filters["target_id"], "target_id"), since=_day(filters["since"], "since"),
            until=until + dt.timedelta(days=1) if until else None, before=_whole(args.get("before", ""), "before"))
    except Invalid as exc:
        error = exc
        log_page = console.audit_log(current_user.id)
    page = render_template("console/audit.html", log=log_page, filters=filters, error=error)
    return page, (error.status if error else 200)
