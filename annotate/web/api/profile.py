"""The signed-in user's profile through the API."""
from __future__ import annotations

from dataclasses import asdict

from flask import jsonify, request
from flask_login import current_user

from ...services import profiles
from ...services.errors import Invalid
from ..access import signed_in
from . import bp


@bp.route("/profile", methods=["GET"])
@signed_in
def get_profile():
    return jsonify(asdict(profiles.get_profile(current_user.id)))


@bp.route("/profile", methods=["PUT", "PATCH"])
@signed_in
def update_profile():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return jsonify(asdict(profiles.update_profile(current_user.id, body)))
