"""The annotation platform: `create_app` is the application factory."""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from flask import Flask

from . import config as config_module


def create_app(overrides: Mapping[str, Any] | None = None, *, check_services: bool | None = None) -> Flask:
    """Build the app from the environment, with `overrides` on top (tests pass theirs).

    Outside tests, the database and Redis are checked once here, so a wrong
    URL stops start-up with one line naming the variable.
    """
    instance_path = (overrides or {}).get("INSTANCE_PATH") or os.environ.get("INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance_path,
                instance_relative_config=True, static_folder="../static", static_url_path="/static")
    os.makedirs(app.instance_path, exist_ok=True)
    env = dict(os.environ)
    if overrides:
        # Settings given by the caller win over the environment, before checking.
        env.update({k: str(v) for k, v in overrides.items() if isinstance(v, str) and k.isupper()})
    app.config.update(config_module.load(app.instance_path, env))
    if overrides:
        app.config.update(overrides)

    from .extensions import csrf, db, login_manager, redis

    db.init_app(app)
    redis.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)

    from .web.access import init_login

    init_login(app)

    from .web import register_blueprints
    from .web.work_lane import WorkLane

    register_blueprints(app)
    app.wsgi_app = WorkLane(app, app.wsgi_app)  # the annotator API's hot calls, in front of Flask

    from .cli import register_commands

    register_commands(app)

    if check_services is None:
        check_services = not app.testing
    if check_services:
        check_connections(app)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app


def check_connections(app: Flask) -> None:
    """Fail fast, in one line, when the database or Redis cannot be reached."""
    from sqlalchemy import text

    from .extensions import db, redis

    with app.app_context():
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as error:  # any driver error means the same to the user
            raise config_module.ConfigError(
                f"DATABASE_URL: cannot connect to the database ({type(error).__name__}: {str(error).splitlines()[0]})"
            ) from None
        try:
            redis.client.ping()
        except Exception as error:
            raise config_module.ConfigError(
                f"REDIS_URL: cannot reach Redis at {app.config['REDIS_URL']} ({error})"
            ) from None
