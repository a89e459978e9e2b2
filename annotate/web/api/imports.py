"""Uploading items through the API: Label Studio's import endpoint, and the
status of background imports."""
from __future__ import annotations

from flask import jsonify, request, url_for
from flask_login import current_user
from ...models import BackgroundJob
from ...services import ingest
from ...services.errors import Invalid
from ..access import requester_or_operator
from . import bp


def import_json(job: BackgroundJob) -> dict:
    return {
        "id": job.id,
        "project": job.project_id,
        "status": job.status,
        "gold": bool(job.params.get("gold")),
        "files": [f["name"] for f in job.params.get("files", [])],
        "rows_done": job.done,
        "rows_total": job.total,
        "errors": job.errors,
        "error": job.error,
        "result": job.result,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


@bp.route("/projects/<int:project_id>/import", methods=["POST"])
@requester_or_operator
def import_tasks(project_id: int):
    gold = _flag("gold")
    uploads = [(f.filename or "", f.stream) for key in request.files for f in request.files.getlist(key)]
    if uploads:
        job_id = ingest.start_import(current_user.id, project_id, uploads, gold=gold)
        job = ingest.get_import(current_user.id, project_id, job_id)
        response = jsonify({"import": job.id, **import_json(job)})
        response.headers["Location"] = url_for("api.import_status", project_id=project_id, import_id=job_id)
        return response, 201
    body = request.get_json(silent=True)
    if body is None:
        raise Invalid("send a JSON list of tasks, or files as multipart/form-data", field="file")
    tasks = body if isinstance(body, list) else [body]
    job_id = ingest.import_json_now(current_user.id, project_id, tasks, gold=gold)
    job = ingest.get_import(current_user.id, project_id, job_id)
    if job.status == "failed":
        raise Invalid(job.error or "the import failed", details=job.errors)
    result = job.result
    body = {
        "import": job.id,
        "task_count": result["items"],
        "annotation_count": result["annotations"],
        "prediction_count": result["predictions"],
        "duration": result["seconds"],
        "file_upload_ids": [],
        "could_be_tasks_list": False,
        "found_formats": {},
        "data_columns": sorted({k for t in tasks if isinstance(t, dict) for k in (t.get("data") or t)}),
    }
    if _flag("return_task_ids"):
        body["task_ids"] = ingest.item_ids_of_import(job.id)
    return jsonify(body), 201


@bp.route("/projects/<int:project_id>/imports/<int:import_id>/")
@bp.route("/projects/<int:project_id>/imports/<int:import_id>")
@requester_or_operator
def import_status(project_id: int, import_id: int):
    return jsonify(import_json(ingest.get_import(current_user.id, project_id, import_id)))


@bp.route("/projects/<int:project_id>/imports/")
@requester_or_operator
def list_imports(project_id: int):
    return jsonify([import_json(job) for job in ingest.list_imports(current_user.id, project_id)])
