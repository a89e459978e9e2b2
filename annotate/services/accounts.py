"""Accounts: sign-up, sign-in with throttling, roles, and personal API tokens."""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import bindparam, select, update

from ..extensions import db
from ..prepared import Prepared
from ..models import ApiToken, Profile, User, utcnow
from ..models.user import ROLES, HasRoles
from . import audit
from .errors import Conflict, Forbidden, Invalid, NotFound, Throttled

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10
# Not a JWT (no dots): label-studio-sdk sends such keys as "Token <key>".
TOKEN_PREFIX = "ann_"
# Writing last_used_at on every API call would turn reads into writes.
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)


def _hasher() -> PasswordHasher:
    if current_app.config.get("FAST_PASSWORD_HASH"):
        # Tests create hundreds of users; the algorithm stays argon2id.
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


# Checked against when the email is unknown, so timing does not tell who has an account.
_DUMMY_HASH: dict[str, str] = {}


def _check_new_account(email: str, name: str, password: str) -> tuple[str, str]:
    email = email.strip().lower()
    name = name.strip()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise Invalid(f"{email!r} is not an email address", field="email")
    if not name:
        raise Invalid("a name is required", field="name")
    if len(name) > 120:
        raise Invalid("the name is longer than 120 characters", field="name")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    return email, name


def sign_up(email: str, name: str, password: str) -> int:
    """Create an annotator account; the other roles are granted by operators."""
    return create_user(email, name, password, roles=("annotator",))


def create_user(email: str, name: str, password: str, roles: tuple[str, ...] = ("annotator",)) -> int:
    email, name = _check_new_account(email, name, password)
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise Invalid(f"unknown role {sorted(unknown)[0]!r}; roles are {', '.join(ROLES)}", field="role")
    password_hash = hash_password(password)
    with db.transaction() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise Conflict(f"an account for {email} already exists", field="email")
        user = User(
            email=email, name=name, password_hash=password_hash,
            is_annotator=True, is_requester="requester" in roles, is_operator="operator" in roles,
        )
        session.add(user)
        session.flush()
        session.add(Profile(user_id=user.id))
        return user.id


def authenticate(email: str, password: str) -> int:
    """The id of the user with these credentials, or an error in words.

    Repeated failures lock the account for a while; the lock is checked
    before the password so guessing during a lock learns nothing.
    """
    email = email.strip().lower()
    config = current_app.config
    hasher = _hasher()
    now = utcnow()
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            dummy = _DUMMY_HASH.setdefault(str(hasher.memory_cost), hasher.hash("not a password"))
            try:
                hasher.verify(dummy, password)
            except VerificationError:
                pass
            raise Invalid("wrong email or password", field="password")
        if user.locked_until is not None and user.locked_until > now:
            minutes = max(1, int((user.locked_until - now).total_seconds() + 59) // 60)
            raise Throttled(f"too many failed sign-ins: try again in {minutes} minute{'s' if minutes > 1 else ''}")
        try:
            hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            user.failed_logins += 1
            if user.failed_logins >= config["LOGIN_MAX_FAILURES"]:
                user.locked_until = now + dt.timedelta(seconds=config["LOGIN_LOCK_SECONDS"])
                user.failed_logins = 0
            # The failure count must survive the error we raise.
            session.commit()
            raise Invalid("wrong email or password", field="password") from None
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        return user.id


def require_operator(session, actor_id: int) -> User:
    actor = session.get(User, actor_id)
    if actor is None or not actor.is_operator:
        raise Forbidden("only operators may do this")
    return actor


def set_role(actor_id: int, user_id: int, role: str, granted: bool) -> None:
    """Grant or take away the requester or operator role (operators only)."""
    if role not in ("requester", "operator"):
        raise Invalid(f"only the requester and operator roles are granted, not {role!r}", field="role")
    with db.transaction() as session:
        require_operator(session, actor_id)
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        if role == "operator" and not granted and user_id == actor_id:
            raise Invalid("operators cannot take away their own operator role", field="role")
        if getattr(user, f"is_{role}") == granted:
            return
        setattr(user, f"is_{role}", granted)
        audit.record(
            session, actor_id=actor_id, action=f"{'grant' if granted else 'revoke'}_{role}",
            target_type="user", target_id=user_id,
        )


@dataclass(frozen=True)
class NewToken:
    id: int
    name: str
    key: str


def _key_hash(key: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(key.encode()).hexdigest()


def create_token(user_id: int, name: str) -> NewToken:
    name = name.strip() or "API token"
    if len(name) > 80:
        raise Invalid("the token name is longer than 80 characters", field="name")
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as session:
        token = ApiToken(user_id=user_id, name=name, prefix=key[:10], key_hash=_key_hash(key))
        session.add(token)
        session.flush()
        return NewToken(token.id, token.name, key)


def list_tokens(user_id: int) -> list[ApiToken]:
    return list(
        db.session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc()))
    )


def revoke_token(user_id: int, token_id: int) -> None:
    with db.transaction() as session:
        token = session.get(ApiToken, token_id)
        # Someone else's token is reported as missing, not as forbidden.
        if token is None or token.user_id != user_id:
            raise NotFound(f"no token {token_id}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()


@dataclass(frozen=True)
class TokenUser(HasRoles):
    """Who a token request is for: the id and roles the access checks need, from one
    indexed row. Anything else a view asks of it comes from the full `User` row,
    read then: most API calls never need it."""

    id: int
    is_annotator: bool
    is_requester: bool
    is_operator: bool

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(db.session.get(User, self.id), name)


# Every API request runs this, so it is a prepared statement (annotate.prepared).
_LIVE_TOKEN = Prepared(select(User.id, User.is_annotator, User.is_requester, User.is_operator, ApiToken.id)
                       .join(ApiToken, ApiToken.user_id == User.id)
                       .where(ApiToken.key_hash == bindparam("key_hash"), ApiToken.revoked_at.is_(None)))
_TOUCH_TOKEN = Prepared(update(ApiToken).where(ApiToken.id == bindparam("token")).values(last_used_at=bindparam("now")))
_touched: dict[str, float] = {}  # key hash -> when this process last wrote its last_used_at (monotonic)


def user_for_token(key: str) -> TokenUser | None:
    """The user a live token belongs to, or None. One indexed query per request."""
    if not key.startswith(TOKEN_PREFIX):
        return None
    direct = db.direct()
    key_hash = _key_hash(key)
    found = direct.execute(_LIVE_TOKEN, {"key_hash": key_hash}).fetchone()
    if found is None:
        return None
    user_id, annotator, requester, operator, token_id = found
    # last_used_at is for people reading their token list: a minute's precision will do.
    now = time.monotonic()
    if now - _touched.get(key_hash, -math.inf) > TOKEN_TOUCH_INTERVAL.total_seconds():
        _touched[key_hash] = now
        with direct.transaction():
            direct.execute(_TOUCH_TOKEN, {"token": token_id, "now": utcnow()})
    return TokenUser(user_id, bool(annotator), bool(requester), bool(operator))


def list_users(query: str = "", limit: int = 200) -> list[User]:
    """Users whose email or name contains `query`, newest first."""
    stmt = select(User).order_by(User.id.desc()).limit(limit)
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        stmt = stmt.where((User.email.like(pattern)) | (User.name.ilike(pattern)))
    return list(db.session.scalars(stmt))
