"""The annotator's dashboard: open projects, earnings, quality, history, appeals."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import earnings, history, reviews
from ..services.errors import DomainError
from .access import annotator_only
from .projects import duration, money

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

RECENT = 10  # history rows on the dashboard itself; the history page has them all

QUALIFICATION_WORDS = {
    "not_needed": "not needed",
    "to_take": "take the qualification test first",
    "in_progress": "qualification test in progress",
    "passed": "passed",
    "failed": "not passed",
    "cooling": "left unfinished: wait to take it again",
}
STATUS_WORDS = {
    "leased": "in progress",
    "submitted": "submitted",
    "expired": "lease ran out",
    "skipped": "skipped",
    "released": "released by an operator",
}


def due_words(deadline: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'due 2026-12-01 18:00 UTC, in 5 h 3 min' (or 'overdue by ...'), for a project's deadline."""
    if deadline is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    left = int((deadline - now).total_seconds()) // 60 * 60
    when = deadline.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if left < 0:
        return f"was due {when}, overdue by {duration(-left)}"
    return f"due {when}, in {duration(left) if left >= 60 else 'under a minute'}"


def window_words(seconds: int) -> str:
    """The deadline window in words: 86400 -> 'a day', 7200 -> '2 hours', 5400 -> '90 minutes'."""
    for size, one, many in ((86400, "a day", "days"), (3600, "an hour", "hours"), (60, "a minute", "minutes")):
        if seconds and seconds % size == 0:
            count = seconds // size
            return one if count == 1 else f"{count} {many}"
    return duration(seconds)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"money": money, "duration": duration, "qualification_words": QUALIFICATION_WORDS,
            "status_words": STATUS_WORDS, "due_words": due_words,
            "deadline_window": window_words(current_app.config["DEADLINE_WINDOW_SECONDS"]),
            "ranking_currency": current_app.config.get("RANKING_CURRENCY", "USD")}


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() else 1


@bp.route("")
@annotator_only
def index():
    return render_template(
        "dashboard/index.html", projects=earnings.open_projects(current_user.id),
        money_summary=earnings.summary(current_user.id), quality=history.quality(current_user.id),
        history=history.assignments(current_user.id, per_page=RECENT))


@bp.route("/history")
@annotator_only
def history_page():
    return render_template("dashboard/history.html", history=history.assignments(current_user.id, _page_number()),
                           appeal_error=None)


@bp.route("/appeals/<int:assignment_id>", methods=["POST"])
@annotator_only
def appeal(assignment_id: int):
    reason = request.form.get("reason", "")
    try:
        reviews.appeal(current_user.id, assignment_id, reason)
    except DomainError as error:
        # The history page again, the error beside the row and the reason kept.
        page = history.assignments(current_user.id, _page_number())
        return render_template("dashboard/history.html", history=page,
                               appeal_error={"assignment_id": assignment_id, "message": error.message,
                                             "reason": reason}), error.status
    flash(f"Your appeal against the rejection of assignment {assignment_id} is sent: "
          "the project's requesters answer it first.")
    return redirect(url_for("dashboard.history_page", page=_page_number(), _anchor=f"assignment-{assignment_id}"),
                    303)
