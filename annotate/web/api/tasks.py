"""Items through the API as Label Studio's "tasks", paged the way label-studio-sdk reads them."""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from ...services import items
from ...services.errors import Invalid
from ..access import requester_or_operator
from . import bp


def _int_arg(name: str, default: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise Invalid(f"{name} is required", field=name)
        return default
    if not raw.isdigit():
        raise Invalid(f"{name} must be a whole number, not {raw!r}", field=name)
    return int(raw)


@bp.route("/tasks/")
@bp.route("/tasks")
@requester_or_operator
def list_tasks():
    page = items.list_tasks(current_user.id, _int_arg("project"), _int_arg("page", 1), _int_arg("page_size", 100))
    return jsonify({"tasks": page.tasks, "total": page.total, "total_annotations": page.total_annotations,
                    "total_predictions": page.total_predictions})


@bp.route("/tasks/<int:item_id>/")
@bp.route("/tasks/<int:item_id>")
@requester_or_operator
def get_task(item_id: int):
    return jsonify(items.get_task(current_user.id, item_id))
