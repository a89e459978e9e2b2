"""People and their credentials: users with roles, profiles and personal API tokens."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

ROLES = ("annotator", "requester", "operator")


class HasRoles:
    """The roles of anything with the three role flags: a `User`, or who a token request is for."""

    is_annotator: bool
    is_requester: bool
    is_operator: bool

    @property
    def roles(self) -> list[str]:
        flags = (self.is_annotator, self.is_requester, self.is_operator)
        return [role for role, held in zip(ROLES, flags) if held]

    def has_role(self, role: str) -> bool:
        return role in self.roles


class User(HasRoles, Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Everyone who signs up labels; the other roles are granted by an operator.
    is_annotator: Mapped[bool] = mapped_column(default=True)
    is_requester: Mapped[bool] = mapped_column(default=False)
    is_operator: Mapped[bool] = mapped_column(default=False)
    blocked_at: Mapped[dt.datetime | None]
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    last_active_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="user")  # noqa: F821
    profile: Mapped["Profile | None"] = relationship(back_populates="user")

    @property
    def is_blocked(self) -> bool:
        return self.blocked_at is not None

    # Flask-Login's user protocol, written out rather than inherited from a mixin.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class Profile(Base):
    """What an annotator declares about themselves; matching reads it."""

    __tablename__ = "profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    # [{"code": "en", "level": "native"}, ...] with ISO 639-1 codes.
    languages: Mapped[list[Any]] = mapped_column(default=list)
    # Content categories (violence, adult, medical, ...) the annotator never wants to see.
    opted_out_categories: Mapped[list[Any]] = mapped_column(default=list)
    # Config kinds they like: text_classification, bounding_boxes, ...
    liked_kinds: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="profile")


class ApiToken(Base):
    """A personal API token. Only a hash is stored; the key is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    # The first characters of the key, so a user can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None
