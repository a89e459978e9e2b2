"""Markdown that requesters write (project instructions), rendered safe to show.

Two layers, because instructions are shown to every annotator: markdown-it
(CommonMark, raw HTML off) escapes any HTML typed in the text and links only
http, https and mailto URLs; nh3 then cleans what came out, so a bug in one
layer is not enough to run a script in an annotator's browser.
"""
from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.I)


def _link_allowed(url: str) -> bool:
    # Relative URLs are refused too: instructions are shown on several pages,
    # where a relative link would point at different things.
    match = _SCHEME.match(url.strip())
    return bool(match) and match.group(1).lower() in ALLOWED_SCHEMES


_md = MarkdownIt("commonmark", {"html": False})
_md.validateLink = _link_allowed


def render(text: str) -> Markup:
    """HTML for `text`, safe to put in a page as it is."""
    html = _md.render(text or "")
    return Markup(nh3.clean(html, url_schemes=set(ALLOWED_SCHEMES),
                            link_rel="noopener noreferrer nofollow"))
