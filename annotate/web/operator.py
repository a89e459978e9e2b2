"""Operator pages for people: roles and teams."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..extensions import db
from ..models import Team
from ..services import accounts, teams
from ..services.errors import DomainError, NotFound
from .access import operator_only

bp = Blueprint("operator", __name__, url_prefix="/operator")


@bp.route("/users")
@operator_only
def users():
    query = request.args.get("q", "")
    return render_template("operator/users.html", users=accounts.list_users(query), q=query)


@bp.route("/users/<int:user_id>/roles", methods=["POST"])
@operator_only
def set_role(user_id: int):
    role = request.form.get("role", "")
    granted = request.form.get("granted") == "1"
    accounts.set_role(current_user.id, user_id, role, granted)
    flash(f"{'Granted' if granted else 'Took away'} the {role} role.")
    return redirect(url_for("operator.users", q=request.args.get("q", "")))


@bp.route("/teams", methods=["GET", "POST"])
@operator_only
def team_list():
    error = None
    if request.method == "POST":
        try:
            team_id = teams.create_team(current_user.id, request.form.get("name", ""))
        except DomainError as exc:
            error = exc
        else:
            flash("Team created.")
            return redirect(url_for("operator.team_detail", team_id=team_id))
    return render_template("operator/teams.html", teams=teams.list_teams(), error=error), (error.status if error else 200)


@bp.route("/teams/<int:team_id>", methods=["GET", "POST"])
@operator_only
def team_detail(team_id: int):
    team = db.session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team {team_id}")
    error = None
    if request.method == "POST":
        try:
            teams.add_member(current_user.id, team_id, request.form.get("email", ""))
        except DomainError as exc:
            error = exc
        else:
            flash("Member added; they are now a requester.")
            return redirect(url_for("operator.team_detail", team_id=team_id))
    return render_template("operator/team.html", team=team, error=error), (error.status if error else 200)


@bp.route("/teams/<int:team_id>/members/<int:user_id>/remove", methods=["POST"])
@operator_only
def remove_member(team_id: int, user_id: int):
    teams.remove_member(current_user.id, team_id, user_id)
    flash("Member removed.")
    return redirect(url_for("operator.team_detail", team_id=team_id))
