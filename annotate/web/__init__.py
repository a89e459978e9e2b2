"""Blueprints: thin views that parse input, call one service and render."""
from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import account, api, auth, errors, home, media, operator, projects

    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(operator.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(projects.bp)
    app.register_blueprint(media.bp)
