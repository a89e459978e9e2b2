"""Stored media (images and their thumbnails) for signed-in users.

Files are named by the hash of their content, so a name never changes what
it serves: browsers may keep them for a year without asking again.
"""
from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory

from .access import signed_in

bp = Blueprint("media", __name__)

ONE_YEAR = 365 * 24 * 3600


@bp.route("/media/<path:name>")
@signed_in
def serve(name: str):
    # send_from_directory joins with werkzeug's safe_join: "..", absolute
    # paths and names outside MEDIA_ROOT are a 404, never a file elsewhere.
    response = send_from_directory(current_app.config["MEDIA_ROOT"], name, max_age=ONE_YEAR)
    # private: only signed-in users may see them, so no shared cache keeps them.
    response.cache_control.public = False
    response.cache_control.private = True
    response.cache_control.immutable = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
