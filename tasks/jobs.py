"""RQ background jobs: thin and idempotent. Each takes ids, loads, calls one
service inside an app context, and lets exceptions through so RQ can retry."""
from __future__ import annotations

from flask import Flask, current_app, has_app_context

_app: Flask | None = None


def app() -> Flask:
    """The app to run in: the caller's (tests run jobs in-process), else one per worker."""
    global _app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _app is None:
        from annotate import create_app

        _app = create_app()
    return _app


def run_import(job_id: int) -> None:
    from annotate.services import ingest

    with app().app_context():
        ingest.run_import(job_id)
