"""Projects: create, edit, pause, archive, and who may see them.

Requesters see and change the projects of their teams; operators see all.
Someone else's project is reported as missing (404), not as forbidden, so
its existence does not leak.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from sqlalchemy import func, select

from ..assist import learner, mlbackend
from ..extensions import db
from ..labelconfig import LabelConfigError, parse_config
from ..models import Assignment, GoldAnswer, Item, Membership, MicroTask, MLBackend, Project, User, utcnow
from ..queue import enqueue
from . import audit
from .errors import Conflict, Forbidden, Invalid, NotFound

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Setting:
    """One project setting: its type, default and bounds, checked the same way
    for the web form and the API."""

    kind: Callable[[Any], Any]
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    help: str = ""


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _whole(value: Any) -> int:
    # Money and counts are whole numbers: 12.5 cents is refused, not rounded.
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError("must be a whole number")
    return int(value)


def _share(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _currency(value: Any) -> str:
    value = _text(value).strip().upper()
    if not CURRENCY_RE.match(value):
        raise ValueError("must be a three-letter ISO 4217 code such as USD or EUR")
    return value


def _categories(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of category names")
    return sorted({v.strip().lower() for v in value if v.strip()})


def _languages(value: Any) -> list[str]:
    codes = _categories(value)
    bad = [code for code in codes if not re.fullmatch(r"[a-z]{2}", code)]
    if bad:
        raise ValueError(f"must be two-letter ISO 639-1 codes such as en or de ({bad[0]!r} is not)")
    return codes


def _deadline(value: Any) -> dt.datetime:
    """An ISO 8601 moment, returned in UTC; one without an offset is read as UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = _text(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("must be a date and time such as 2026-12-01T18:00:00Z (UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _check_deadline(values: Mapping[str, Any], current: dt.datetime | None = None) -> None:
    """A deadline must be in the future when it is set; one kept unchanged may have passed."""
    deadline = values.get("deadline")
    if deadline is not None and deadline != current and deadline <= utcnow():
        raise Invalid(f"deadline must be in the future, not {deadline.isoformat()} "
                      f"(it is {utcnow().replace(microsecond=0).isoformat()} now, UTC)", field="deadline")


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return check


SETTINGS: dict[str, Setting] = {
    "title": Setting(_text, 1, 200, help="what annotators and your team see"),
    "description": Setting(_text, 0, 5000),
    "instructions": Setting(_text, 0, 100_000, help="Markdown; no raw HTML"),
    "overlap": Setting(_whole, 1, 50, help="annotators per micro-task (k)"),
    "max_overlap": Setting(_whole, 1, 100, help="most annotators an uncertain micro-task may get"),
    "items_per_micro_task": Setting(_whole, 1, 1000),
    "pay_per_micro_task": Setting(_whole, 0, 100_000_00, help="in minor units (cents)"),
    "qualification_pay": Setting(_whole, 0, 100_000_00, help="for the qualification micro-task, in minor units"),
    "currency": Setting(_currency),
    "lease_seconds": Setting(_whole, 30, 24 * 3600),
    "priority": Setting(_whole, -100, 100),
    "gold_share": Setting(_share, 0.0, 0.5, help="share of each micro-task that is gold items"),
    "qualification_gold_count": Setting(_whole, 0, 200, help="gold items in the qualification test; 0 = none"),
    "qualification_min_accuracy": Setting(_share, 0.0, 1.0),
    "max_share_per_annotator": Setting(_share, 0.001, 1.0, nullable=True),
    "content_categories": Setting(_categories, help="annotators who opted out of one never see the project"),
    "required_languages": Setting(_languages, help="ISO 639-1 codes annotators must have declared"),
    "bonus_quality_target": Setting(_share, 0.0, 1.0, nullable=True),
    "bonus_amount": Setting(_whole, 0, 100_000_00),
    "estimated_seconds_per_micro_task": Setting(_whole, 1, 24 * 3600, nullable=True),
    "deadline": Setting(_deadline, nullable=True,
                        help="when you need the labels, UTC (e.g. 2026-12-01 18:00); matching favours the "
                             "project as it nears; empty = none"),
    "approve_quality_threshold": Setting(_share, 0.0, 1.0),
    "review_window_seconds": Setting(_whole, 3600, 30 * 24 * 3600),
    "confidence_target": Setting(_share, 0.0, 1.0),
    "iou_threshold": Setting(_share, 0.05, 1.0),
    "show_predictions": Setting(_boolean),
    "unassisted_share": Setting(_share, 0.0, 1.0),
    "prediction_min_score": Setting(_share, 0.0, 1.0),
    "queue_order": Setting(_choice("default", "uncertainty")),
    "assist": Setting(_choice("none", "builtin", "backend"),
                      help="where pre-annotations come from: none, the built-in learner or an ML backend"),
    "ml_backend_url": Setting(_text, 0, 500, nullable=True, help="one of the ML backends an operator allowed"),
    "retrain_growth": Setting(_share, 0.01, 10.0, help="retrain once consensus labels grew by this share"),
}

# Label Studio's names for what we share with it, so label-studio-sdk works.
LABEL_STUDIO_NAMES = {
    "maximum_annotations": "overlap",
    "expert_instruction": "instructions",
    "show_instruction": None,  # accepted and ignored: our page always shows them
}


def check_settings(raw: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Turn raw input (form or JSON) into checked settings, or raise Invalid
    naming the first bad field."""
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in LABEL_STUDIO_NAMES:
            name = LABEL_STUDIO_NAMES[name]
            if name is None:
                continue
        if name == "label_config":
            values[name] = value
            continue
        setting = SETTINGS.get(name)
        if setting is None:
            continue  # unknown fields are ignored, as Label Studio's API does
        if value is None or (value == "" and setting.nullable):
            if not setting.nullable:
                raise Invalid(f"{name} is required", field=name)
            values[name] = None
            continue
        try:
            checked = setting.kind(value)
        except (TypeError, ValueError) as error:
            message = str(error) if str(error).startswith("must") else "must be a number"
            raise Invalid(f"{name} {message}, not {value!r}", field=name) from None
        size = len(checked) if isinstance(checked, str) else checked
        if isinstance(checked, (int, float, str)) and not isinstance(checked, bool):
            if setting.minimum is not None and size < setting.minimum:
                what = "characters" if isinstance(checked, str) else ""
                raise Invalid(f"{name} must be at least {setting.minimum:g}{' ' + what if what else ''}",
                              field=name)
            if setting.maximum is not None and size > setting.maximum:
                what = "characters" if isinstance(checked, str) else ""
                raise Invalid(f"{name} must be at most {setting.maximum:g}{' ' + what if what else ''}",
                              field=name)
        values[name] = checked
    if not partial:
        for required in ("title", "label_config"):
            if not values.get(required):
                raise Invalid(f"{required} is required", field=required)
    return values


def check_label_config(xml: Any):
    """The parsed config, or Invalid naming the tag and the reason."""
    try:
        return parse_config(xml)
    except LabelConfigError as error:
        where = f" (tag <{error.tag}>" + (f", line {error.line}" if error.line else "") + ")" if error.tag else (
            f" (line {error.line})" if error.line else "")
        raise Invalid(f"label_config: {error.message}{where}", field="label_config") from None


# --- access -----------------------------------------------------------------


def _team_ids(session, user: User) -> set[int]:
    return set(session.scalars(select(Membership.team_id).where(Membership.user_id == user.id)))


def visible_project(session, user: User, project_id: int) -> Project:
    """The project if this user may see it as a requester or operator, else NotFound."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    if user.is_operator:
        return project
    if user.is_requester and project.team_id in _team_ids(session, user):
        return project
    raise NotFound(f"no project {project_id}")


def _editable_project(session, user: User, project_id: int) -> Project:
    project = visible_project(session, user, project_id)
    if not (user.is_requester and project.team_id in _team_ids(session, user)) and not user.is_operator:
        raise Forbidden("only requesters of the project's team may change it")
    return project


def list_projects(user_id: int, *, include_archived: bool = False) -> list[Project]:
    session = db.session
    user = session.get(User, user_id)
    stmt = select(Project).order_by(Project.id.desc())
    if not include_archived:
        stmt = stmt.where(Project.archived_at.is_(None))
    if not user.is_operator:
        if not user.is_requester:
            return []
        stmt = stmt.where(Project.team_id.in_(select(Membership.team_id).where(Membership.user_id == user_id)))
    return list(session.scalars(stmt))


def get_project(user_id: int, project_id: int) -> Project:
    session = db.session
    return visible_project(session, session.get(User, user_id), project_id)


def default_team_id(user_id: int) -> int:
    """The team a requester's new project goes to when they name none."""
    teams = sorted(db.session.scalars(select(Membership.team_id).where(Membership.user_id == user_id)))
    if not teams:
        raise Forbidden("you are in no team: an operator must add you to one before you create projects")
    return teams[0]


# --- use cases --------------------------------------------------------------


def create_project(user_id: int, team_id: int | None, raw: Mapping[str, Any]) -> int:
    values = check_settings(raw, partial=False)
    config = check_label_config(values["label_config"])
    with db.transaction() as session:
        user = session.get(User, user_id)
        if team_id is None:
            team_id = default_team_id(user_id)
        if not user.is_requester or team_id not in _team_ids(session, user):
            raise Forbidden("only requesters of a team create projects for it")
        values.setdefault("max_overlap", values.get("overlap", 3))
        _check_together({**_defaults(), **values})
        _check_deadline(values)
        _check_assist(session, {**_defaults(), **values})
        project = Project(team_id=team_id, created_by_id=user_id, config_kind=config.kind, **values)
        session.add(project)
        session.flush()
        audit.record(session, actor_id=user_id, action="create_project", target_type="project",
                     target_id=project.id, team_id=team_id)
        return project.id


def _defaults() -> dict[str, Any]:
    return {column.key: column.default.arg for column in Project.__table__.columns
            if column.default is not None and not callable(column.default.arg)}


def _check_together(values: Mapping[str, Any]) -> None:
    """Rules that tie settings together."""
    if values.get("max_overlap") is not None and values["max_overlap"] < values["overlap"]:
        raise Invalid(f"max_overlap ({values['max_overlap']}) cannot be below overlap ({values['overlap']})",
                      field="max_overlap")


def update_project(user_id: int, project_id: int, raw: Mapping[str, Any]) -> None:
    values = check_settings(raw, partial=True)
    with db.transaction() as session:
        project = _editable_project(session, session.get(User, user_id), project_id)
        if "label_config" in values and values["label_config"] != project.label_config:
            config = check_label_config(values["label_config"])
            _check_config_change(session, project, config)
            values["config_kind"] = config.kind
        if "overlap" in values and "max_overlap" not in values and project.max_overlap < values["overlap"]:
            values["max_overlap"] = values["overlap"]
        frozen = {"items_per_micro_task", "overlap"} & values.keys()
        if frozen and project.status != "draft" and any(values[f] != getattr(project, f) for f in frozen):
            name = sorted(frozen)[0]
            raise Conflict(f"{name} cannot change once the project is published: its micro-tasks are cut",
                           field=name)
        merged = {c.key: getattr(project, c.key) for c in Project.__table__.columns}
        merged.update(values)
        _check_together(merged)
        _check_deadline(values, project.deadline)
        _check_assist(session, merged)
        for name, value in values.items():
            setattr(project, name, value)
        audit.record(session, actor_id=user_id, action="update_project", target_type="project",
                     target_id=project_id, fields=sorted(values))
        assisted_live = project.status == "live" and project.assist != "none"
    if assisted_live and {"assist", "ml_backend_url", "queue_order"} & values.keys():
        # A new source or order applies now, not at the next scheduled refresh.
        enqueue("tasks.assist.refresh_project", project_id, job_id=f"assist-refresh-{project_id}")


def _check_assist(session, values: Mapping[str, Any]) -> None:
    """The assist source must be able to work: a learnable config, or an allowed backend URL."""
    if values.get("assist") == "builtin":
        try:
            learner.text_choice_task(parse_config(values["label_config"]))
        except learner.CannotLearn as why:
            raise Invalid(f"assist: {why}", field="assist") from None
    if values.get("assist") == "backend":
        url = values.get("ml_backend_url")
        if not url:
            raise Invalid("ml_backend_url: choose one of the ML backends an operator allowed", field="ml_backend_url")
        allowed = session.scalars(select(MLBackend.url))
        if not mlbackend.is_allowed(url, allowed):
            raise Invalid(f"ml_backend_url: {url} is not on the operators' list of ML backends; "
                          "ask an operator to add it", field="ml_backend_url")


def _check_config_change(session, project: Project, config) -> None:
    """A new config must still fit the items already uploaded."""
    if project.status != "draft":
        raise Conflict("the label config cannot change once the project is published", field="label_config")
    sample = session.scalar(select(Item.data).where(Item.project_id == project.id).limit(1))
    if sample is not None:
        missing = [key for key in config.data_keys if key not in sample]
        if missing:
            raise Invalid(f"label_config: the uploaded items have no ${missing[0]} for the new config",
                          field="label_config")


def pause_project(user_id: int, project_id: int) -> None:
    with db.transaction() as session:
        project = _editable_project(session, session.get(User, user_id), project_id)
        if project.status != "live":
            raise Conflict(f"only a live project can be paused; this one is {project.status}")
        project.status = "paused"
        audit.record(session, actor_id=user_id, action="pause_project", target_type="project", target_id=project_id)


def archive_project(user_id: int, project_id: int) -> None:
    """Hide a project from lists and stop its work; its data and pay stay."""
    with db.transaction() as session:
        project = _editable_project(session, session.get(User, user_id), project_id)
        if project.archived_at is None:
            project.archived_at = utcnow()
            if project.status == "live":
                project.status = "paused"
            audit.record(session, actor_id=user_id, action="archive_project", target_type="project",
                         target_id=project_id)


def delete_project(user_id: int, project_id: int) -> None:
    """Delete a project that nobody has worked on; otherwise archive it."""
    with db.transaction() as session:
        project = _editable_project(session, session.get(User, user_id), project_id)
        worked = session.scalar(select(func.count(Assignment.id)).where(Assignment.project_id == project_id))
        if worked:
            raise Conflict("annotators have worked on this project: archive it instead, so their work and pay stay")
        session.delete(project)
        audit.record(session, actor_id=user_id, action="delete_project", target_type="project", target_id=project_id)


def counts(project_id: int) -> dict[str, int]:
    session = db.session
    items, gold = session.execute(
        select(func.count(Item.id), func.count(GoldAnswer.item_id))
        .select_from(Item).outerjoin(GoldAnswer, GoldAnswer.item_id == Item.id)
        .where(Item.project_id == project_id)
    ).one()
    micro_tasks, done = session.execute(
        select(func.count(MicroTask.id), func.count(MicroTask.done_at)).where(MicroTask.project_id == project_id)
    ).one()
    return {"items": items - gold, "gold_items": gold, "micro_tasks": micro_tasks, "micro_tasks_done": done}


def default_settings() -> dict[str, Any]:
    """What a new project gets for each setting the requester leaves alone,
    for pre-filling the web form."""
    values = {}
    for name in SETTINGS:
        default = Project.__table__.columns[name].default
        if default is None:
            values[name] = None
        else:  # list columns default to a fresh list, made by a callable
            values[name] = default.arg(None) if default.is_callable else default.arg
    return values
