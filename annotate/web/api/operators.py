"""Operator actions on annotators through the API: block and unblock."""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user

from ...services import work
from ..access import operator_only
from . import bp


@bp.route("/users/<int:user_id>/block", methods=["POST"])
@operator_only
def block_user(user_id: int):
    body = request.get_json(silent=True) or {}
    work.block(current_user.id, user_id, str(body.get("reason", "")))
    return jsonify({"user": user_id, "blocked": True})


@bp.route("/users/<int:user_id>/unblock", methods=["POST"])
@operator_only
def unblock_user(user_id: int):
    body = request.get_json(silent=True) or {}
    work.unblock(current_user.id, user_id, str(body.get("reason", "")))
    return jsonify({"user": user_id, "blocked": False})
