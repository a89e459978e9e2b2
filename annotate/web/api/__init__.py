"""The JSON API, in Label Studio's dialect where the concepts are shared.

Requests authenticate with `Authorization: Token <key>` or the browser
session; session requests that change state need the CSRF header.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user

from ...extensions import csrf
from ...services import accounts
from ..access import public, signed_in
from ..errors import API_VERSION

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)


@bp.before_request
def _csrf_for_session_requests():
    # Token requests carry no cookie, so they cannot be forged cross-site.
    if (request.method not in ("GET", "HEAD", "OPTIONS") and not g.get("token_auth")
            and current_app.config.get("WTF_CSRF_ENABLED", True)):
        csrf.protect()


def user_json(user) -> dict:
    return {"id": user.id, "email": user.email, "first_name": user.name, "username": user.email,
            "roles": user.roles}


@bp.route("/version/")
@bp.route("/version")
@public
def version():
    return jsonify({"release": API_VERSION, "label-studio-os-package": {"version": API_VERSION},
                    "annotate": {"version": "0.1.0"}})


@bp.route("/current-user/whoami")
@bp.route("/current-user/whoami/")
@signed_in
def whoami():
    return jsonify(user_json(current_user))


@bp.route("/tokens/", methods=["GET"])
@signed_in
def list_tokens():
    return jsonify([
        {"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
         "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
         "revoked": t.revoked_at is not None}
        for t in accounts.list_tokens(current_user.id)
    ])


@bp.route("/tokens/", methods=["POST"])
@signed_in
def create_token():
    body = request.get_json(silent=True) or {}
    token = accounts.create_token(current_user.id, str(body.get("name", "")))
    return jsonify({"id": token.id, "name": token.name, "key": token.key}), 201


@bp.route("/tokens/<int:token_id>/", methods=["DELETE"])
@signed_in
def revoke_token(token_id: int):
    accounts.revoke_token(current_user.id, token_id)
    return "", 204


# The routes of the other API modules attach themselves to `bp`.
from . import (assist, console, exports, imports, operators, payroll, profile, projects, skills,  # noqa: E402,F401
               tasks, work)
