"""Model assistance through the API.

- `GET /api/projects/{id}/assist`: the source, its last error, the model versions and the anchoring figures.
- `POST /api/projects/{id}/assist/train`: train now (built-in) or START_TRAINING (ML backend); 202 with the job.
- `GET|POST /api/ml-backends`, `DELETE /api/ml-backends/{id}`, `POST /api/ml-backends/{id}/check`:
  the operators' allow-list of ML backend URLs.
"""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from ...services import assist, mlbackends, projects
from ..access import operator_only, requester_or_operator
from . import bp


def model_json(model) -> dict:
    return {"id": model.id, "kind": model.kind, "version": model.version, "training_size": model.training_size,
            "heldout_accuracy": model.heldout_accuracy, "created_at": model.created_at.isoformat(),
            "model_version": model.details.get("model_version") or f"builtin-v{model.version}",
            "details": model.details}


def backend_json(backend) -> dict:
    moment = lambda value: value.isoformat() if value else None  # noqa: E731
    return {"id": backend.id, "name": backend.name, "url": backend.url, "created_at": moment(backend.created_at),
            "checked_at": moment(backend.checked_at), "last_ok_at": moment(backend.last_ok_at),
            "last_error": backend.last_error}


@bp.route("/projects/<int:project_id>/assist", methods=["GET"])
@requester_or_operator
def assist_state(project_id: int):
    project = projects.get_project(current_user.id, project_id)
    return jsonify({"assist": project.assist, "ml_backend_url": project.ml_backend_url,
                    "show_predictions": project.show_predictions, "unassisted_share": project.unassisted_share,
                    "prediction_min_score": project.prediction_min_score,
                    "queue_order": project.queue_order, "error": project.assist_error,
                    "models": [model_json(m) for m in assist.models(current_user.id, project_id)],
                    "anchoring": assist.anchoring_report(current_user.id, project_id)})


@bp.route("/projects/<int:project_id>/assist/train", methods=["POST"])
@requester_or_operator
def assist_train(project_id: int):
    return jsonify({"job": assist.request_training(current_user.id, project_id)}), 202


@bp.route("/ml-backends", methods=["GET"])
@requester_or_operator
def ml_backends():
    # Requesters see the list to pick from; only operators change it.
    return jsonify([backend_json(b) for b in mlbackends.list_backends()])


@bp.route("/ml-backends", methods=["POST"])
@operator_only
def add_ml_backend():
    body = request.get_json(silent=True) or {}
    backend_id = mlbackends.add_backend(current_user.id, str(body.get("name", "")), str(body.get("url", "")))
    return jsonify(backend_json(next(b for b in mlbackends.list_backends() if b.id == backend_id))), 201


@bp.route("/ml-backends/<int:backend_id>", methods=["DELETE"])
@operator_only
def remove_ml_backend(backend_id: int):
    mlbackends.remove_backend(current_user.id, backend_id)
    return "", 204


@bp.route("/ml-backends/<int:backend_id>/check", methods=["POST"])
@operator_only
def check_ml_backend(backend_id: int):
    return jsonify(mlbackends.check_backend(current_user.id, backend_id))
