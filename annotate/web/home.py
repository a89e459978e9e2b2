"""The start page: what each role can do from here."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from ..services import teams
from .access import public

bp = Blueprint("home", __name__)


@bp.route("/")
@public
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    my_teams = [team for team in teams.list_teams() if team.id in set(teams.team_ids_of(current_user.id))]
    return render_template("home.html", teams=my_teams)


@bp.route("/favicon.ico")
@public
def favicon():
    """Browsers and tools that ask for /favicon.ico without reading the page's <link rel=icon>."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.route("/healthz")
@public
def health():
    return {"status": "ok"}
