"""Requesters' dataset exports: choose a format and filters, follow the
background job, download the file until it expires."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import exports, projects
from ..services.errors import DomainError
from .access import requester_or_operator
from .api.exports import send_download

bp = Blueprint("exports", __name__, url_prefix="/projects")


def _page(project_id: int, error: DomainError | None = None, values: dict | None = None):
    project = projects.get_project(current_user.id, project_id)
    listed = exports.list_exports(current_user.id, project_id)
    waiting = ("created", "in_progress")
    page = render_template("exports/list.html", project=project, error=error, values=values or {},
                           offers=exports.available_formats(current_user.id, project_id), exports=listed,
                           ttl_days=exports.ttl_seconds() / 86400,
                           running=any(e["status"] in waiting or any(c["status"] in waiting
                                                                     for c in e["converted_formats"])
                                       for e in listed))
    return page, (error.status if error else 200)


@bp.route("/<int:project_id>/exports", methods=["GET"])
@requester_or_operator
def export_list(project_id: int):
    return _page(project_id)


@bp.route("/<int:project_id>/exports", methods=["POST"])
@requester_or_operator
def start(project_id: int):
    form = request.form
    values = {"format": form.get("format", ""), "only_finished": "only_finished" in form,
              "only_approved": "only_approved" in form, "annotated_only": "annotated_only" in form,
              "min_confidence": form.get("min_confidence", "").strip(), "with_images": "with_images" in form}
    try:
        filters = exports.Filters.check(values)
        export_id = exports.start_export(current_user.id, project_id, values["format"], filters,
                                         with_images=values["with_images"])
    except DomainError as error:
        return _page(project_id, error, values)
    flash(f"Export {export_id} started; this page shows its progress.")
    return redirect(url_for(".export_list", project_id=project_id))


@bp.route("/<int:project_id>/exports/<int:export_id>/download", methods=["GET"])
@requester_or_operator
def download(project_id: int, export_id: int):
    return send_download(exports.export_file(current_user.id, project_id, export_id))
