"""Projects through the API, with Label Studio's field names where shared."""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from ...models import Project
from ...services import projects, work
from ...services.errors import Invalid
from ..access import requester_or_operator
from . import bp


def project_json(project: Project, counts: dict | None = None) -> dict:
    body = {
        "id": project.id,
        "title": project.title,
        "description": project.description,
        "label_config": project.label_config,
        "expert_instruction": project.instructions,
        "maximum_annotations": project.overlap,
        "team": project.team_id,
        "status": project.status,
        "config_kind": project.config_kind,
        "is_published": project.status in ("live", "paused", "done"),
        "archived": project.archived_at is not None,
        "created_at": project.created_at.isoformat(),
        "published_at": project.published_at.isoformat() if project.published_at else None,
    }
    for name in projects.SETTINGS:
        if name not in body:
            body[name] = getattr(project, name)
    body["deadline"] = project.deadline.isoformat() if project.deadline else None  # ISO 8601, UTC
    if counts is not None:
        body["task_number"] = counts["items"] + counts["gold_items"]
        body["counts"] = counts
    return body


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


@bp.route("/projects/", methods=["GET"])
@bp.route("/projects", methods=["GET"])
@requester_or_operator
def list_projects():
    found = projects.list_projects(current_user.id)
    # Label Studio pages this list; small enough here to answer whole, in its shape.
    return jsonify({"count": len(found), "next": None, "previous": None,
                    "results": [project_json(p) for p in found]})


@bp.route("/projects/", methods=["POST"])
@bp.route("/projects", methods=["POST"])
@requester_or_operator
def create_project():
    body = _body()
    team = body.get("team")
    if team is not None and (isinstance(team, bool) or not isinstance(team, int)):
        raise Invalid("team must be a team id", field="team")
    project_id = projects.create_project(current_user.id, team, body)
    project = projects.get_project(current_user.id, project_id)
    return jsonify(project_json(project, projects.counts(project_id))), 201


@bp.route("/projects/<int:project_id>/", methods=["GET"])
@bp.route("/projects/<int:project_id>", methods=["GET"])
@requester_or_operator
def get_project(project_id: int):
    project = projects.get_project(current_user.id, project_id)
    return jsonify(project_json(project, projects.counts(project_id)))


@bp.route("/projects/<int:project_id>/", methods=["PATCH"])
@bp.route("/projects/<int:project_id>", methods=["PATCH"])
@requester_or_operator
def update_project(project_id: int):
    work.update_project(current_user.id, project_id, _body())
    project = projects.get_project(current_user.id, project_id)
    return jsonify(project_json(project, projects.counts(project_id)))


@bp.route("/projects/<int:project_id>/", methods=["DELETE"])
@bp.route("/projects/<int:project_id>", methods=["DELETE"])
@requester_or_operator
def delete_project(project_id: int):
    projects.delete_project(current_user.id, project_id)
    return "", 204


@bp.route("/projects/<int:project_id>/publish", methods=["POST"])
@requester_or_operator
def publish_project(project_id: int):
    job_id = work.publish_project(current_user.id, project_id)
    return jsonify({**project_json(projects.get_project(current_user.id, project_id)), "split_job": job_id})


@bp.route("/projects/<int:project_id>/pause", methods=["POST"])
@requester_or_operator
def pause_project(project_id: int):
    work.pause(current_user.id, project_id)
    return jsonify(project_json(projects.get_project(current_user.id, project_id)))


@bp.route("/projects/<int:project_id>/archive", methods=["POST"])
@requester_or_operator
def archive_project(project_id: int):
    work.archive(current_user.id, project_id)
    return jsonify(project_json(projects.get_project(current_user.id, project_id)))


@bp.route("/projects/<int:project_id>/progress")
@requester_or_operator
def project_progress(project_id: int):
    return jsonify(work.queue_state(current_user.id, project_id))
