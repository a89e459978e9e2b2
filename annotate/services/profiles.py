"""What annotators declare about themselves: languages, content they do not
want to see, and the kinds of work they like. Matching reads it on the next
request for work."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..labelconfig import KINDS
from ..models import ContentCategory, Profile
from . import work
from .errors import Invalid

LANGUAGE_LEVELS = ("basic", "fluent", "native")
# Categories every platform has; operators add more as ContentCategory rows.
BUILT_IN_CATEGORIES = ("violence", "adult", "medical")


@dataclass(frozen=True)
class ProfileView:
    languages: list[dict[str, str]]
    opted_out_categories: list[str]
    liked_kinds: list[str]


def categories() -> list[str]:
    extra = db.session.scalars(select(ContentCategory.name).order_by(ContentCategory.name))
    return sorted(set(BUILT_IN_CATEGORIES) | set(extra))


def get_profile(user_id: int) -> ProfileView:
    profile = db.session.get(Profile, user_id)
    if profile is None:
        return ProfileView([], [], [])
    return ProfileView(list(profile.languages), list(profile.opted_out_categories), list(profile.liked_kinds))


def _languages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise Invalid("languages must be a list of {code, level}", field="languages")
    seen: dict[str, str] = {}
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise Invalid(f"language {index} must be an object with a code and a level", field="languages")
        code = str(entry.get("code", "")).strip().lower()
        level = str(entry.get("level", "fluent")).strip().lower()
        if not re.fullmatch(r"[a-z]{2}", code):
            raise Invalid(f"language {index}: {code!r} is not a two-letter ISO 639-1 code such as en or de",
                          field="languages")
        if level not in LANGUAGE_LEVELS:
            raise Invalid(f"language {index}: the level must be one of {', '.join(LANGUAGE_LEVELS)}",
                          field="languages")
        seen[code] = level
    return [{"code": code, "level": level} for code, level in sorted(seen.items())]


def _names(raw: Any, allowed: list[str] | tuple[str, ...], field: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise Invalid(f"{field} must be a list of names", field=field)
    names = sorted({v.strip().lower() for v in raw if v.strip()})
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise Invalid(f"{field}: {unknown[0]!r} is not one of {', '.join(allowed)}", field=field)
    return names


def update_profile(user_id: int, raw: dict[str, Any]) -> ProfileView:
    """Replace the fields given; the others stay. Takes effect on the next request for work."""
    with db.transaction() as session:
        profile = session.get(Profile, user_id)
        if profile is None:
            profile = Profile(user_id=user_id, languages=[], opted_out_categories=[], liked_kinds=[])
            session.add(profile)
        if "languages" in raw:
            profile.languages = _languages(raw["languages"])
        if "opted_out_categories" in raw:
            profile.opted_out_categories = _names(raw["opted_out_categories"], categories(), "opted_out_categories")
        if "liked_kinds" in raw:
            profile.liked_kinds = _names(raw["liked_kinds"], KINDS, "liked_kinds")
        view = ProfileView(list(profile.languages), list(profile.opted_out_categories), list(profile.liked_kinds))
    # SQL first, then what dispatch checks in the same step that hands out work.
    work.dispatcher().set_annotator(work.annotator_state(user_id))
    db.session.rollback()
    return view
