"""Blueprints: thin views that parse input, call one service and render."""
from __future__ import annotations

import importlib

from flask import Flask

# Each module holds one blueprint, `bp`.
BLUEPRINTS = ("auth", "home", "account", "operator", "api", "projects", "media",
              "profile", "workbench", "dashboard", "exports", "payroll", "console", "reviews")


def register_blueprints(app: Flask) -> None:
    from . import errors, static_files

    errors.init_app(app)
    static_files.init_app(app)
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(f"{__name__}.{name}").bp)
