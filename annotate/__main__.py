"""`python -m annotate COMMAND`: the flask commands, with start-up errors in one line."""
from __future__ import annotations

import sys

from flask.cli import FlaskGroup

from . import create_app
from .config import ConfigError


def main() -> None:
    try:
        app = create_app()
    except ConfigError as error:
        sys.exit(f"annotate: {error}")
    FlaskGroup(create_app=lambda: app, add_default_commands=True, load_dotenv=False).main(prog_name="annotate")


if __name__ == "__main__":
    main()
