"""Numbers behind the operator console's charts, as JSON; operators only."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, request
from flask_login import current_user

from ...services import console, fairness, stats
from ..access import operator_only
from . import bp


def _plain(value: Any) -> Any:
    """Timestamps as ISO 8601 UTC, recursively."""
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@bp.route("/console/projects/<int:project_id>/progress")
@operator_only
def console_project_progress(project_id: int):
    """Items done, labels per hour and agreement per hour or day (`?bucket=hour|day`)."""
    return jsonify(stats.project_progress(current_user.id, project_id, request.args.get("bucket") or None))


@bp.route("/console/fairness")
@operator_only
def console_fairness():
    """Effective hourly rates against the floor, the spread of work, and rejections per requester."""
    return jsonify(_plain(fairness.report(current_user.id)))


@bp.route("/console/queues")
@operator_only
def console_queues():
    """Per project the micro-tasks waiting, leased and done, and the live leases."""
    return jsonify(_plain(console.queues(current_user.id)))
