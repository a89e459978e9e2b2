"""Domain errors: what a user did wrong, in words, with where it happened.

Views turn these into responses; `status` is the HTTP status to answer with.
"""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message}
        if self.field:
            body["validation_errors"] = {self.field: [self.message]}
        if self.details is not None:
            body["errors"] = self.details
        return body


class Invalid(DomainError):
    status = 400


class NotAuthenticated(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Throttled(DomainError):
    status = 429
