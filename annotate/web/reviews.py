"""Requesters' reviews of submitted work, and appeals.

A requester of the project's team sees the work waiting for review, each
assignment's answers beside the consensus and gold of its items, approves
it or rejects it naming the rule, and answers the worker's appeal (a
refusal goes to an operator, in the console). The services decide who may:
someone else's project is reported as missing.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import reviews
from ..services.errors import DomainError, NotFound
from .access import requester_only
from .projects import duration, money

bp = Blueprint("reviews", __name__, url_prefix="/reviews")

# Offered when rejecting; the requester may name another rule.
RULES = (
    "ignored the instructions",
    "failed the gold checks",
    "random or careless answers",
    "incomplete work",
    "copied or automated answers",
)


# --- showing Label Studio results in words ----------------------------------------


def _region_words(region: dict[str, Any]) -> str:
    value = region.get("value") or {}
    kind = region.get("type", "")
    labels = value.get(kind) if isinstance(value.get(kind), list) else value.get("labels")
    if "choices" in value:
        text = ", ".join(map(str, value["choices"]))
    elif "taxonomy" in value:
        text = "; ".join(" / ".join(map(str, path)) for path in value["taxonomy"])
    elif kind == "textarea" or (kind == "" and "text" in value and "start" not in value):
        text = " ".join(map(str, value.get("text", [])))
    elif "rating" in value:
        text = f"{value['rating']} of 5" if kind == "rating" else str(value["rating"])
    elif "number" in value:
        text = str(value["number"])
    elif labels is not None:
        text = ", ".join(map(str, labels)) or "(no label)"
        if "start" in value:
            text += f" “{value.get('text', '')}” [{value['start']}–{value.get('end')}]"
        elif "x" in value:
            text += (f" at {float(value['x']):.0f}%, {float(value.get('y', 0)):.0f}% "
                     f"({float(value.get('width', 0)):.0f}×{float(value.get('height', 0)):.0f}%)")
        elif "points" in value:
            text += f" ({len(value['points'])} points)"
    else:
        text = json.dumps(value, ensure_ascii=False)[:200]
    name = region.get("from_name")
    return f"{name}: {text}" if name else text


@bp.app_template_filter("result_words")
def result_words(result: Any) -> list[str]:
    """A Label Studio result as lines of words: "sentiment: Positive"."""
    if not result:
        return []
    if not isinstance(result, list):
        return [json.dumps(result, ensure_ascii=False)[:200]]
    return [_region_words(region) for region in result if isinstance(region, dict)]


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"money": money, "duration": duration}


# --- pages ----------------------------------------------------------------------------


@bp.route("/")
@requester_only
def index():
    return render_template("reviews/index.html", projects=reviews.review_projects(current_user.id))


@bp.route("/projects/<int:project_id>")
@requester_only
def project_queue(project_id: int):
    waiting = reviews.pending_reviews(current_user.id, project_id)
    appeals = reviews.open_appeals(current_user.id, project_id)
    project = next((p for p in reviews.review_projects(current_user.id) if p["project_id"] == project_id), None)
    return render_template("reviews/project.html", waiting=waiting, appeals=appeals, project=project,
                           project_id=project_id)


def _render_assignment(assignment_id: int, error: DomainError | None = None, form: dict | None = None):
    detail = reviews.review_detail(current_user.id, assignment_id)
    page = render_template("reviews/assignment.html", review=detail, error=error, form=form or {}, rules=RULES)
    return page, (error.status if error else 200)


@bp.route("/assignments/<int:assignment_id>")
@requester_only
def assignment(assignment_id: int):
    return _render_assignment(assignment_id)


def _done(assignment_id: int, message: str):
    flash(message)
    detail = reviews.review_detail(current_user.id, assignment_id)
    return redirect(url_for(".project_queue", project_id=detail["project_id"]))


@bp.route("/assignments/<int:assignment_id>/approve", methods=["POST"])
@requester_only
def approve(assignment_id: int):
    try:
        reviews.approve(current_user.id, assignment_id, request.form.get("reason", ""))
    except DomainError as error:
        return _render_assignment(assignment_id, error, request.form)
    return _done(assignment_id, f"Approved assignment {assignment_id}: the worker is paid for it.")


@bp.route("/assignments/<int:assignment_id>/reject", methods=["POST"])
@requester_only
def reject(assignment_id: int):
    try:
        reviews.reject(current_user.id, assignment_id, request.form.get("rule", ""), request.form.get("reason", ""))
    except DomainError as error:
        return _render_assignment(assignment_id, error, request.form)
    return _done(assignment_id, f"Rejected assignment {assignment_id}: the worker sees the rule and may appeal "
                                f"within {reviews.APPEAL_DAYS} days.")


@bp.route("/assignments/<int:assignment_id>/appeals/<int:appeal_id>", methods=["POST"])
@requester_only
def answer_appeal(assignment_id: int, appeal_id: int):
    grant = request.form.get("grant") == "1"
    appeal = reviews.review_detail(current_user.id, assignment_id)["appeal"]
    if appeal is None or appeal["appeal_id"] != appeal_id:
        raise NotFound(f"assignment {assignment_id} has no appeal {appeal_id}")
    try:
        status = reviews.answer_appeal(current_user.id, appeal_id, grant, request.form.get("response", ""))
    except DomainError as error:
        return _render_assignment(assignment_id, error, request.form)
    if status == "granted":
        return _done(assignment_id, f"Appeal granted: assignment {assignment_id} is approved and paid.")
    return _done(assignment_id, "Appeal refused: it goes to an operator, whose decision is final.")
