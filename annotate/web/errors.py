"""Error pages and Label Studio's JSON error body for the API."""
from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..services.errors import DomainError

log = logging.getLogger(__name__)
API_VERSION = "1.0"


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """Label Studio's error body, which label-studio-sdk reads."""
    return {"id": str(uuid.uuid4()), "status_code": status, "version": API_VERSION,
            "detail": detail, "exc_info": None, **extra}


def json_error(status: int, detail: str, **extra: Any):
    return jsonify(error_body(status, detail, **extra)), status


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        if wants_json():
            body = error.to_dict()
            detail = body.pop("detail")
            return json_error(error.status, detail, **body)
        return render_template("error.html", status=error.status, message=error.message), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if wants_json():
            return json_error(error.code or 500, error.description or error.name)
        return render_template("error.html", status=error.code, message=error.description), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if app.testing:
            raise error
        # Ours, not the user's: log it with context, answer without details.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return json_error(500, "Internal server error; it has been logged.")
        return render_template("error.html", status=500, message="Something went wrong on our side; it has been logged."), 500
