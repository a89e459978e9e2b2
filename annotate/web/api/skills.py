"""Skills through the API: define them, set what a project asks for, read your
levels, and (operators) adjust a level with a reason."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from flask import jsonify, request
from flask_login import current_user

from ...services import skills
from ...services.errors import Invalid
from ..access import operator_only, requester_or_operator, signed_in
from . import bp


def _plain(value: Any) -> Any:
    """A service's dataclasses as JSON: timestamps in ISO 8601."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


@bp.route("/skills", methods=["GET"])
@requester_or_operator
def list_skills():
    return jsonify(_plain(skills.list_skills()))


@bp.route("/skills", methods=["POST"])
@requester_or_operator
def create_skill():
    body = _body()
    return jsonify(_plain(skills.create_skill(current_user.id, body.get("name"), body.get("description", "")))), 201


@bp.route("/projects/<int:project_id>/skills", methods=["GET"])
@requester_or_operator
def project_skills(project_id: int):
    return jsonify(skills.project_skills(current_user.id, project_id))


@bp.route("/projects/<int:project_id>/skills", methods=["PUT"])
@requester_or_operator
def set_project_skills(project_id: int):
    body = request.get_json(silent=True)
    raw = body.get("skills") if isinstance(body, dict) else body
    return jsonify(skills.set_project_skills(current_user.id, project_id, raw))


@bp.route("/profile/skills", methods=["GET"])
@signed_in
def my_levels():
    return jsonify(_plain(skills.levels_of(current_user.id)))


@bp.route("/annotators/<int:annotator_id>/skills", methods=["GET"])
@operator_only
def annotator_levels(annotator_id: int):
    return jsonify(_plain(skills.annotator_levels(current_user.id, annotator_id)))


@bp.route("/annotators/<int:annotator_id>/skills/<int:skill_id>", methods=["POST"])
@operator_only
def adjust_level(annotator_id: int, skill_id: int):
    body = _body()
    view = skills.adjust_level(current_user.id, annotator_id, skill_id, body.get("level"), body.get("reason"))
    return jsonify(_plain(view))
