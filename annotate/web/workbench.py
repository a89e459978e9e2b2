"""The annotator's labeling page. The page itself talks to the work API
(/api/work/...); this blueprint serves the page and each project's set-up
(label config, instructions, hotkeys), which the page asks for once per project."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_login import current_user

from .. import markdown
from ..services import earnings
from ..services.errors import Invalid
from .access import annotator_only
from .projects import money

bp = Blueprint("workbench", __name__, url_prefix="/work")

# Input within this many seconds makes the annotator active: their time counts
# and heartbeats keep the lease alive. WORKBENCH_IDLE_SECONDS overrides it.
IDLE_SECONDS = 60


def _setup(project_id: int) -> dict[str, Any]:
    setup = earnings.project_for_annotator(current_user.id, project_id)
    setup["instructions_html"] = str(markdown.render(setup.pop("instructions")))
    setup["pay_text"] = money(setup["pay"], setup["currency"])
    setup["qualification_pay_text"] = money(setup["qualification_pay"], setup["currency"])
    return setup


@bp.route("")
@annotator_only
def page():
    raw = request.args.get("project")
    if raw is not None and not raw.isdigit():
        raise Invalid(f"project must be a project id, not {raw!r}", field="project")
    project_id = int(raw) if raw else None
    settings = {
        "project": project_id,
        "setup": _setup(project_id) if project_id else None,
        "idle_seconds": current_app.config.get("WORKBENCH_IDLE_SECONDS", IDLE_SECONDS),
        "user": {"id": current_user.id, "name": current_user.name},
        "urls": {
            "next": url_for("api.next_work"),
            "submit": url_for("api.submit", assignment_id=0).replace("/0/", "/{id}/"),
            "heartbeat": url_for("api.heartbeat", assignment_id=0).replace("/0/", "/{id}/"),
            "skip": url_for("api.skip", assignment_id=0).replace("/0/", "/{id}/"),
            "setup": url_for("workbench.project_setup", project_id=0).replace("/0", "/{id}"),
            "dashboard": url_for("dashboard.index"),
            "login": url_for("auth.login", next=request.full_path.rstrip("?")),
        },
    }
    return render_template("workbench/page.html", settings=settings, project_id=project_id)


@bp.route("/projects/<int:project_id>")
@annotator_only
def project_setup(project_id: int):
    return jsonify(_setup(project_id))
