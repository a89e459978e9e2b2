"""A user's own account: personal API tokens."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..services import accounts
from .access import signed_in

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/tokens", methods=["GET", "POST"])
@signed_in
def tokens():
    new_token = None
    if request.method == "POST":
        new_token = accounts.create_token(current_user.id, request.form.get("name", ""))
    return render_template("account/tokens.html", tokens=accounts.list_tokens(current_user.id), new_token=new_token)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@signed_in
def revoke_token(token_id: int):
    accounts.revoke_token(current_user.id, token_id)
    flash("The token is revoked: requests that use it are refused from now on.")
    return redirect(url_for("account.tokens"))
