"""Sign up, sign in and sign out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from ..extensions import db
from ..models import User
from ..services import accounts
from ..services.errors import DomainError
from .access import public, signed_in

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would help phishing.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


def _start_session(user_id: int) -> None:
    # A fresh session at sign-in, so a session planted before it is worth nothing.
    session.clear()
    login_user(db.session.get(User, user_id))


@bp.route("/signup", methods=["GET", "POST"])
@public
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = request.form
    if request.method == "POST":
        try:
            user_id = accounts.sign_up(form.get("email", ""), form.get("name", ""), form.get("password", ""))
        except DomainError as error:
            return render_template("auth/signup.html", error=error, form=form), error.status
        _start_session(user_id)
        flash("Welcome! Your account is ready.")
        return redirect(url_for("home.index"))
    return render_template("auth/signup.html", error=None, form=form)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = request.form
    if request.method == "POST":
        try:
            user_id = accounts.authenticate(form.get("email", ""), form.get("password", ""))
        except DomainError as error:
            return render_template("auth/login.html", error=error, form=form), error.status
        _start_session(user_id)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", error=None, form=form)


@bp.route("/logout", methods=["POST"])
@signed_in
def logout():
    logout_user()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
