"""Requester pages for projects: list, create, edit, pause, archive, delete,
upload items and follow an import.

Views are thin: parse the form, call one service function, render. A domain
error re-renders the page with the message beside its field, the user's
input kept, and the error's status (400, 403, 409...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Mapping

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from .. import markdown
from ..labelconfig import TEMPLATES
from ..models import Project
from ..readers import FORMATS
from ..scoring.currency import minor_digits
from ..services import assist, ingest, items, mlbackends, projects, skills, teams, work
from ..services.errors import DomainError, Invalid
from .access import requester_or_operator
from .api.imports import import_json

bp = Blueprint("projects", __name__, url_prefix="/projects")

TASKS_PREVIEW = 20

# --- the settings form --------------------------------------------------------

# Every setting of projects.SETTINGS appears in exactly one group (a test checks).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("About", ("title", "description", "instructions")),
    ("Work", ("overlap", "max_overlap", "items_per_micro_task", "lease_seconds",
              "estimated_seconds_per_micro_task", "priority", "deadline", "queue_order")),
    ("Pay", ("currency", "pay_per_micro_task", "qualification_pay", "bonus_amount", "bonus_quality_target")),
    ("Quality", ("gold_share", "qualification_gold_count", "qualification_min_accuracy",
                 "approve_quality_threshold", "confidence_target", "iou_threshold",
                 "max_share_per_annotator", "review_window_seconds")),
    ("Who may work on it", ("content_categories", "required_languages")),
    ("Model assistance", ("assist", "ml_backend_url", "show_predictions", "prediction_min_score",
                          "unassisted_share", "retrain_growth")),
)

# Help for the settings whose service definition carries none.
HELP = {
    "description": "a short summary shown in project lists",
    "items_per_micro_task": "items handed out and paid together",
    "currency": "ISO 4217 code of all amounts on this project",
    "lease_seconds": "how long an annotator holds a micro-task before it goes back to the queue",
    "priority": "higher is handed out first, across projects",
    "qualification_min_accuracy": "share of qualification gold items to get right to pass",
    "max_share_per_annotator": "most of the project's micro-tasks one annotator may do; empty = no limit",
    "content_categories": "comma-separated, e.g. violence, medical; annotators who opted out never see the project",
    "required_languages": "comma-separated ISO 639-1 codes, e.g. de, fr; annotators must have declared each",
    "bonus_quality_target": "quality at or above which the bonus is paid; empty = no bonus",
    "bonus_amount": "per micro-task, in minor units",
    "estimated_seconds_per_micro_task": "needed to publish: the hourly pay it implies must reach the floor",
    "approve_quality_threshold": "below this, work waits for your review instead of being approved",
    "review_window_seconds": "how long you have to review before submissions are approved",
    "confidence_target": "consensus confidence at which an item needs no more annotators",
    "iou_threshold": "overlap at which two regions count as the same",
    "show_predictions": "show the assist model's predictions to annotators as pre-annotations",
    "unassisted_share": "share of micro-tasks shown without predictions, to measure their effect",
    "prediction_min_score": "pre-annotations the model is less sure of than this are not shown (0 shows all)",
    "queue_order": "uncertainty: the items the model is least sure of go first",
    "retrain_growth": "the built-in learner retrains once its consensus labels grew by this share",
}
LABELS = {"overlap": "Overlap (k)", "max_overlap": "Max overlap", "iou_threshold": "IoU threshold",
          "ml_backend_url": "ML backend URL"}
OPTIONS = {"queue_order": ("default", "uncertainty"), "assist": ("none", "builtin", "backend")}
MONEY = {"pay_per_micro_task", "qualification_pay", "bonus_amount"}
DURATIONS = {"lease_seconds", "review_window_seconds", "estimated_seconds_per_micro_task"}
TEXTAREAS = {"description": 2, "instructions": 8}
FROZEN_ONCE_PUBLISHED = {"overlap", "items_per_micro_task"}


@dataclass(frozen=True)
class FormField:
    """One setting as an input: its widget and the HTML attributes of its bounds."""

    name: str
    label: str
    help: str
    widget: str  # text, textarea, number, checkbox, select
    attrs: dict[str, str] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    hint: str | None = None  # "money" or "duration": a live hint beside the input


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@cache
def form_field(name: str) -> FormField:
    setting = projects.SETTINGS[name]
    python_type = Project.__table__.c[name].type.python_type  # the column says int, float, str, bool
    attrs: dict[str, str] = {}
    widget = "text"
    if name in OPTIONS:
        widget = "select"
    elif python_type is bool:
        widget = "checkbox"
    elif python_type in (int, float):
        widget = "number"
        if setting.minimum is not None:
            attrs["min"] = _bound(setting.minimum)
        if setting.maximum is not None:
            attrs["max"] = _bound(setting.maximum)
        # Shares step by hundredths, unless their bound needs thousandths.
        lowest = setting.minimum or 0
        attrs["step"] = "1" if python_type is int else ("0.01" if round(lowest, 2) == lowest else "0.001")
    elif python_type is str:
        widget = "textarea" if name in TEXTAREAS else "text"
        if name in TEXTAREAS:
            attrs["rows"] = str(TEXTAREAS[name])
        if setting.maximum is not None:
            attrs["maxlength"] = _bound(setting.maximum)
        if name == "currency":
            attrs.update(pattern="[A-Za-z]{3}", maxlength="3", size="4")
        if name == "ml_backend_url":
            attrs["list"] = "ml-backends"  # the operators' allow-list, as suggestions
    # Empty only where the setting takes it: nullable, a list, or text that may be empty.
    may_be_empty = setting.nullable or python_type not in (int, float, str) or (
        python_type is str and setting.minimum == 0)
    if not may_be_empty and widget != "select":
        attrs["required"] = "required"
    if setting.nullable:
        attrs["placeholder"] = "none"
    label = LABELS.get(name) or name.replace("_", " ").replace("micro task", "micro-task").capitalize()
    hint = "money" if name in MONEY else "duration" if name in DURATIONS else None
    return FormField(name, label, setting.help or HELP.get(name, ""), widget, attrs, OPTIONS.get(name, ()), hint)


def form_groups() -> list[tuple[str, list[FormField]]]:
    return [(title, [form_field(name) for name in names]) for title, names in GROUPS]


def _shown(value: Any) -> Any:
    """A stored setting as the form shows it; booleans stay booleans for checkboxes."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value)
    return value


def _project_values(project: Project) -> dict[str, Any]:
    names = [*projects.SETTINGS, "label_config"]
    return {name: _shown(getattr(project, name)) for name in names}


def _settings_from(form: Mapping[str, str]) -> dict[str, Any]:
    """The submitted fields as raw settings; the service checks them."""
    raw: dict[str, Any] = {}
    for name in [*projects.SETTINGS, "label_config"]:
        if name in projects.SETTINGS and form_field(name).widget == "checkbox":
            raw[name] = name in form  # an unticked box is not sent at all
        elif name in form:
            # Browsers send textarea lines with CRLF; keep what the API would store.
            raw[name] = form[name].replace("\r\n", "\n")
    return raw


def _page_fields(form: Mapping[str, str]) -> dict[str, str]:
    """What the form sends besides settings, kept when it is shown again."""
    return {name: form.get(name, "") for name in ("team", "template", "sample")}


def _team_id(form: Mapping[str, str]) -> int | None:
    value = form.get("team", "")
    if value == "":
        return None
    if not value.isdigit():
        raise Invalid("team must be one of your teams", field="team")
    return int(value)


# --- formatting -----------------------------------------------------------------

def money(minor: int | None, currency: str) -> str:
    """Minor units as major units with the code: 150, USD -> "1.50 USD"."""
    if minor is None:
        return ""
    digits = minor_digits(currency)
    sign, minor = ("-" if minor < 0 else ""), abs(minor)
    if digits == 0:
        return f"{sign}{minor} {currency}"
    whole, part = divmod(minor, 10 ** digits)
    return f"{sign}{whole}.{part:0{digits}d} {currency}"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (not parts and unit == "s"):
            count, seconds = divmod(seconds, size)
            parts.append(f"{count} {unit}")
    return " ".join(parts)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"money": money, "duration": duration, "markdown": markdown.render, "groups": form_groups}


# --- pages ----------------------------------------------------------------------


@bp.route("/")
@requester_or_operator
def project_list():
    archived = request.args.get("archived") == "1"
    found = projects.list_projects(current_user.id, include_archived=archived)
    # One count query per project: lists are a team's projects, a few dozen at most.
    return render_template("projects/list.html", projects=found, archived=archived,
                           counts={p.id: projects.counts(p.id) for p in found})


def _render_form(project: Project | None, values: Mapping[str, Any], error: DomainError | None = None,
                 sample: dict | None = None):
    my_teams = [t for t in teams.list_teams() if t.id in set(teams.team_ids_of(current_user.id))]
    templates = {key: {"title": t.title, "xml": t.xml, "sample": t.sample_data} for key, t in TEMPLATES.items()}
    page = render_template("projects/form.html", project=project, values=values, error=error, sample=sample,
                           teams=my_teams, templates=templates, frozen=FROZEN_ONCE_PUBLISHED,
                           ml_backends=mlbackends.list_backends())
    return page, (error.status if error else 200)


@bp.route("/new", methods=["GET", "POST"])
@requester_or_operator
def new():
    if request.method == "GET":
        defaults = {name: _shown(value) for name, value in projects.default_settings().items()}
        return _render_form(None, {**defaults, "label_config": TEMPLATES["text_classification"].xml,
                                   "template": "text_classification"})
    settings = _settings_from(request.form)
    try:
        project_id = projects.create_project(current_user.id, _team_id(request.form), settings)
    except DomainError as error:
        return _render_form(None, {**settings, **_page_fields(request.form)}, error)
    flash("Project created. Upload its items next.")
    return redirect(url_for(".detail", project_id=project_id))


@bp.route("/samples/<name>")
@requester_or_operator
def sample_media(name: str):
    """The image and sound the ready configs' previews show (drawn by annotate.media, not shipped)."""
    from .. import media

    if name not in media.SAMPLES:
        return "no such sample", 404
    response = current_app.response_class(media.sample(name), mimetype=media.SAMPLES[name])
    response.cache_control.private = True
    response.cache_control.max_age = 24 * 3600
    return response


@bp.route("/check-config", methods=["POST"])
@requester_or_operator
def check_config():
    """The server's verdict on a label config, for the form's live preview."""
    body = request.get_json(silent=True) or {}
    try:
        config = projects.check_label_config(body.get("label_config", ""))
    except DomainError as error:
        return jsonify(ok=False, error=error.message, kind=None, data_keys=[], media_keys=[])
    return jsonify(ok=True, error=None, kind=config.kind, data_keys=list(config.data_keys),
                   media_keys=list(config.media_keys))


def _render_detail(project_id: int, error: DomainError | None = None):
    project = projects.get_project(current_user.id, project_id)
    page = render_template(
        "projects/detail.html", project=project, error=error, counts=projects.counts(project_id),
        imports=[import_json(job) for job in ingest.list_imports(current_user.id, project_id)],
        tasks=items.list_tasks(current_user.id, project_id, 1, TASKS_PREVIEW),
        assist_models=assist.models(current_user.id, project_id),
        anchoring=assist.anchoring_report(current_user.id, project_id),
        project_skills=skills.project_skills(current_user.id, project_id), skill_choices=skills.list_skills())
    return page, (error.status if error else 200)


@bp.route("/<int:project_id>")
@requester_or_operator
def detail(project_id: int):
    return _render_detail(project_id)


@bp.route("/<int:project_id>/edit", methods=["GET", "POST"])
@requester_or_operator
def edit(project_id: int):
    project = projects.get_project(current_user.id, project_id)
    if request.method == "GET":
        # The preview shows the project's first item, when it has one.
        first = items.list_tasks(current_user.id, project_id, 1, 1).tasks
        return _render_form(project, _project_values(project), sample=first[0]["data"] if first else None)
    settings = _settings_from(request.form)
    try:
        work.update_project(current_user.id, project_id, settings)
    except DomainError as error:
        return _render_form(project, {**settings, **_page_fields(request.form)}, error)
    flash("Project saved.")
    return redirect(url_for(".detail", project_id=project_id))


def _act(project_id: int, action, done: str, next_url: str | None = None):
    """Run a project action from its button; a refusal is shown on the project page."""
    try:
        action(current_user.id, project_id)
    except DomainError as error:
        return _render_detail(project_id, error)
    flash(done)
    return redirect(next_url or url_for(".detail", project_id=project_id))


@bp.route("/<int:project_id>/publish", methods=["POST"])
@requester_or_operator
def publish(project_id: int):
    return _act(project_id, work.publish_project,
                "Project published: its items are being cut into micro-tasks and queued for annotators.")


@bp.route("/<int:project_id>/pause", methods=["POST"])
@requester_or_operator
def pause(project_id: int):
    return _act(project_id, work.pause, "Project paused: annotators get no new work from it.")


@bp.route("/<int:project_id>/archive", methods=["POST"])
@requester_or_operator
def archive(project_id: int):
    return _act(project_id, work.archive, "Project archived: hidden from lists, its data and pay kept.")


@bp.route("/<int:project_id>/delete", methods=["POST"])
@requester_or_operator
def delete(project_id: int):
    return _act(project_id, projects.delete_project, "Project deleted.", url_for(".project_list"))


@bp.route("/<int:project_id>/assist/train", methods=["POST"])
@requester_or_operator
def train_now(project_id: int):
    return _act(project_id, assist.request_training,
                "Training requested: the new model's predictions replace the old ones when it is done.",
                url_for(".detail", project_id=project_id, _anchor="assist"))


@bp.route("/<int:project_id>/skills", methods=["POST"])
@requester_or_operator
def set_skills(project_id: int):
    """The Skills section's form: one row per skill, an empty skill drops the row."""
    rows = zip(request.form.getlist("skill_id"), request.form.getlist("min_level"))
    wanted = [{"skill_id": s, "min_level": m or 0} for s, m in rows if s.strip()]
    return _act(project_id, lambda user_id, pid: skills.set_project_skills(user_id, pid, wanted),
                "Skills saved: only annotators at these levels get work from the project, from their next request.",
                url_for(".detail", project_id=project_id, _anchor="skills"))


@bp.route("/<int:project_id>/skills/new", methods=["POST"])
@requester_or_operator
def new_skill(project_id: int):
    form = request.form
    return _act(project_id,
                lambda user_id, _pid: skills.create_skill(user_id, form.get("name"), form.get("description", "")),
                f"Skill {form.get('name', '').strip()!r} defined: pick it below with a minimum level.",
                url_for(".detail", project_id=project_id, _anchor="skills"))


# --- uploads ----------------------------------------------------------------------


def _render_upload(project: Project, error: DomainError | None = None, gold: bool = False):
    limits = ingest.limits()
    page = render_template(
        "projects/upload.html", project=project, error=error, gold=gold, limits=limits,
        max_upload_bytes=current_app.config.get("MAX_CONTENT_LENGTH"),
        extensions=sorted(FORMATS), accept=",".join(sorted(FORMATS)),
        data_keys=projects.check_label_config(project.label_config).data_keys)
    return page, (error.status if error else 200)


@bp.route("/<int:project_id>/upload", methods=["GET", "POST"])
@requester_or_operator
def upload(project_id: int):
    project = projects.get_project(current_user.id, project_id)
    if request.method == "GET":
        return _render_upload(project)
    gold = "gold" in request.form
    # A file input left empty still sends one part, with no file name.
    files = [(f.filename, f.stream) for f in request.files.getlist("file") if f.filename]
    try:
        import_id = ingest.start_import(current_user.id, project_id, files, gold=gold)
    except DomainError as error:
        return _render_upload(project, error, gold)
    return redirect(url_for(".import_status", project_id=project_id, import_id=import_id))


@bp.route("/<int:project_id>/imports/<int:import_id>")
@requester_or_operator
def import_status(project_id: int, import_id: int):
    job = ingest.get_import(current_user.id, project_id, import_id)
    return render_template("projects/import.html", project=projects.get_project(current_user.id, project_id),
                           job=import_json(job))
