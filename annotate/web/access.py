"""Who may use a view. Every view declares it with one of these decorators."""
from __future__ import annotations

import functools
from typing import Any, Callable

from flask import abort, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user

from ..extensions import login_manager
from ..services import accounts


def role_required(*roles: str) -> Callable:
    """Signed-in users holding one of `roles`; others get 401 (anonymous) or 403."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not any(current_user.has_role(role) for role in roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.access = roles  # type: ignore[attr-defined]
        return wrapped

    return decorator


signed_in = role_required("annotator", "requester", "operator")
annotator_only = role_required("annotator")
requester_only = role_required("requester")
operator_only = role_required("operator")


def public(view: Callable) -> Callable:
    view.access = ("public",)  # type: ignore[attr-defined]
    return view


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for a request
    that carries no session cookie: API calls with a token, which are most calls."""

    def open_session(self, app, request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def init_login(app) -> None:
    from ..extensions import db
    from ..models import User

    app.session_interface = CookieSessions()
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None

    @app.before_request
    def authenticate_token():
        # Label Studio's header, which label-studio-sdk sends: "Token <key>".
        # An explicit credential wins over any session cookie sent along.
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "token":
            return None
        user = accounts.user_for_token(key.strip())
        if user is None:
            from .errors import json_error

            return json_error(401, "Invalid token.")
        g._login_user = user  # where Flask-Login keeps the request's user
        g.token_auth = True
        return None

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import redirect, url_for

        from .errors import wants_json, json_error

        if wants_json():
            return json_error(401, "Authentication credentials were not provided.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


requester_or_operator = role_required("requester", "operator")
