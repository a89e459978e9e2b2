"""The annotator's profile page: languages, content opt-outs, kinds of work liked,
and their skill levels in words."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..labelconfig import KINDS
from ..services import profiles, skills
from ..services.errors import DomainError
from .access import signed_in

bp = Blueprint("profile", __name__, url_prefix="/profile")


def _languages_from(form) -> list[dict[str, str]]:
    codes, levels = form.getlist("language_code"), form.getlist("language_level")
    return [{"code": code, "level": level} for code, level in zip(codes, levels) if code.strip()]


@bp.route("/", methods=["GET", "POST"])
@signed_in
def edit():
    error = None
    if request.method == "POST":
        try:
            profiles.update_profile(current_user.id, {
                "languages": _languages_from(request.form),
                "opted_out_categories": request.form.getlist("opted_out"),
                "liked_kinds": request.form.getlist("liked"),
            })
        except DomainError as exc:
            error = exc
        else:
            flash("Profile saved: it applies from your next request for work.")
            return redirect(url_for("profile.edit"))
    return render_template("profile.html", profile=profiles.get_profile(current_user.id), error=error,
                           categories=profiles.categories(), kinds=KINDS, levels=profiles.LANGUAGE_LEVELS,
                           form=request.form if error else None,
                           skill_levels=skills.levels_of(current_user.id)), (error.status if error else 200)
