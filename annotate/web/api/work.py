"""The annotator's API: ask for work, submit it, keep the lease alive, skip."""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from ...services import work
from ...services.errors import Invalid
from ..access import annotator_only
from . import bp


def _json_object() -> dict:
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


@bp.route("/work/next", methods=["POST"])
@annotator_only
def next_work():
    project = request.args.get("project")
    if project is not None and not project.isdigit():
        raise Invalid(f"project must be a project id, not {project!r}", field="project")
    assignment = work.next_assignment(current_user.id, int(project) if project else None)
    if assignment is None:
        return "", 204
    return jsonify(assignment)


@bp.route("/work/<int:assignment_id>/submit", methods=["POST"])
@annotator_only
def submit(assignment_id: int):
    body = _json_object()
    return jsonify(work.submit(current_user.id, assignment_id, body.get("annotations")))


@bp.route("/work/<int:assignment_id>/heartbeat", methods=["POST"])
@annotator_only
def heartbeat(assignment_id: int):
    return jsonify(work.heartbeat(current_user.id, assignment_id))


@bp.route("/work/<int:assignment_id>/skip", methods=["POST"])
@annotator_only
def skip(assignment_id: int):
    work.skip(current_user.id, assignment_id, str(_json_object().get("reason", "")))
    return jsonify({"assignment_id": assignment_id, "status": "skipped"})
