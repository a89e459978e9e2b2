"""The annotator's API: ask for work, submit it, keep the lease alive, skip.

These views answer the browser session; calls with a token are answered in
front of Flask, the same way (annotate.web.work_lane).
"""
from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_login import current_user

from ...services import work
from ...services.errors import Invalid
from ..access import annotator_only
from ..work_lane import dump_json, parse_object
from . import bp


def _json_object() -> dict:
    return parse_object(request.get_data())


def _json(payload: Any) -> Response:
    return Response(dump_json(payload), mimetype="application/json")


@bp.route("/work/next", methods=["POST"])
@annotator_only
def next_work():
    project = request.args.get("project")
    if project is not None and not project.isdigit():
        raise Invalid(f"project must be a project id, not {project!r}", field="project")
    assignment = work.next_assignment(current_user.id, int(project) if project else None)
    if assignment is None:
        return "", 204
    return _json(assignment)


@bp.route("/work/<int:assignment_id>/submit", methods=["POST"])
@annotator_only
def submit(assignment_id: int):
    body = _json_object()
    return _json(work.submit(current_user.id, assignment_id, body.get("annotations")))


@bp.route("/work/<int:assignment_id>/heartbeat", methods=["POST"])
@annotator_only
def heartbeat(assignment_id: int):
    return _json(work.heartbeat(current_user.id, assignment_id))


@bp.route("/work/<int:assignment_id>/skip", methods=["POST"])
@annotator_only
def skip(assignment_id: int):
    work.skip(current_user.id, assignment_id, str(_json_object().get("reason", "")))
    return _json({"assignment_id": assignment_id, "status": "skipped"})
