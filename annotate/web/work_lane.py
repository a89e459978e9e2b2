"""The annotator API's four calls with a token, answered in front of Flask.

`POST /api/work/next`, `/api/work/{id}/submit`, `/heartbeat` and `/skip` are
what every annotator calls several times a minute, and Flask's request
machinery (request context, session, before and after hooks, routing,
response object) costs more CPU than the work itself: bench/dispatch.py
measures both. So a request to one of them that carries `Authorization:
Token ...` is answered here, inside an app context only; everything else,
these calls from the browser session included, goes on to Flask.

The answers are the same either way: the same token look-up, role check,
services and JSON, and the same error bodies (annotate.web.errors). The
work tests drive this lane with tokens; the browser tests drive the Flask
views (annotate.web.api.work).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

import orjson
from flask import Flask
from werkzeug.exceptions import Forbidden as HTTPForbidden

from ..services import accounts, work
from ..services.errors import DomainError, Invalid
from .errors import error_body

log = logging.getLogger(__name__)

_ROUTE = re.compile(r"/api/work/(?:(next)|(\d+)/(submit|heartbeat|skip))")
_STATUS = {200: "200 OK", 204: "204 No Content", 400: "400 Bad Request", 401: "401 Unauthorized",
           403: "403 Forbidden", 404: "404 Not Found", 409: "409 Conflict", 413: "413 Payload Too Large",
           429: "429 Too Many Requests", 500: "500 Internal Server Error", 503: "503 Service Unavailable"}


class WorkLane:
    """WSGI middleware: the four calls here, the rest to `wsgi_app` (Flask's)."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = _ROUTE.fullmatch(environ.get("PATH_INFO", ""))
        scheme, _, key = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if route is None or environ["REQUEST_METHOD"] != "POST" or scheme.lower() != "token":
            return self.wsgi_app(environ, start_response)
        with self.app.app_context():
            status, payload = self._answer(route, key.strip(), environ)
            body = b"" if status == 204 else dump_json(payload)
        headers = [("Content-Length", str(len(body)))]
        if status != 204:
            headers.append(("Content-Type", "application/json"))
        start_response(_STATUS.get(status, str(status)), headers)
        return [body]

    def _answer(self, route: re.Match, key: str, environ: dict) -> tuple[int, Any]:
        try:
            user = accounts.user_for_token(key)
            if user is None:
                return 401, error_body(401, "Invalid token.")
            if not user.is_annotator:
                return 403, error_body(403, HTTPForbidden.description)
            return self._call(route, user.id, environ)
        except DomainError as error:
            body = error.to_dict()
            return error.status, error_body(error.status, body.pop("detail"), **body)
        except Exception:
            if self.app.testing:
                raise
            # Ours, not the user's: logged with context, answered without details.
            log.exception("unhandled error on POST %s", environ.get("PATH_INFO"))
            return 500, error_body(500, "Internal server error; it has been logged.")

    def _call(self, route: re.Match, annotator_id: int, environ: dict) -> tuple[int, Any]:
        if route.group(1):
            project = parse_qs(environ.get("QUERY_STRING", "")).get("project", [None])[-1]
            if project is not None and not project.isdigit():
                raise Invalid(f"project must be a project id, not {project!r}", field="project")
            assignment = work.next_assignment(annotator_id, int(project) if project else None)
            return (204, None) if assignment is None else (200, assignment)
        assignment_id, action = int(route.group(2)), route.group(3)
        if action == "submit":
            return 200, work.submit(annotator_id, assignment_id, self._body(environ).get("annotations"))
        if action == "heartbeat":
            return 200, work.heartbeat(annotator_id, assignment_id)
        work.skip(annotator_id, assignment_id, str(self._body(environ).get("reason", "")))
        return 200, {"assignment_id": assignment_id, "status": "skipped"}

    def _body(self, environ: dict) -> dict:
        """The JSON object in the body ({} for none), read as Flask's views read it."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Invalid("Content-Length must be a number of bytes") from None
        limit = self.app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and length > limit:
            raise _TooLarge(f"the body is over {limit} bytes")
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        return parse_object(raw)


class _TooLarge(DomainError):
    status = 413


def dump_json(payload: Any) -> bytes:
    """JSON as Flask's `jsonify` writes it (keys sorted), so both ways answer the same bytes."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def parse_object(raw: bytes) -> dict:
    """A request body that must be a JSON object; {} when empty."""
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Invalid(f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body
