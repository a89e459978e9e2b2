"""Instructions are Markdown: what a requester writes is shown formatted,
and nothing in it can run in an annotator's browser."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from annotate.markdown import render


def test_normal_markdown_survives():
    html = render("# Boxes\n\nDraw **tight** boxes, *not* loose ones:\n\n- cars\n- people\n\n1. first\n2. second\n\n"
                  "See [the guide](https://example.org/guide?a=1&b=2) or [mail us](mailto:team@example.org).\n\n"
                  "Use `Ctrl+Z` to undo.\n\n```\nlabel = 'car'\n```\n\n> a quote\n\n"
                  "![a car](https://example.org/car.png)")
    assert isinstance(html, Markup)
    for part in ("<h1>Boxes</h1>", "<strong>tight</strong>", "<em>not</em>", "<li>cars</li>", "<ol>",
                 '<a href="https://example.org/guide?a=1&amp;b=2" rel="noopener noreferrer nofollow">the guide</a>',
                 '<a href="mailto:team@example.org"', "<code>Ctrl+Z</code>", "<pre><code>label = 'car'",
                 "<blockquote>", '<img src="https://example.org/car.png" alt="a car">'):
        assert part in html, part


class Tags(HTMLParser):
    """Every tag and attribute a browser would see in the HTML."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="https://example.org" onclick="alert(1)">x</a>',
    "<div style='position:fixed'>cover</div>",
    "<iframe src='https://evil.example'></iframe>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD4=)",
    "[click](vbscript:msgbox)",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "[relative](/logout)",
])
def test_html_scripts_and_unsafe_links_do_not_survive(text):
    tags = Tags(render(text)).tags
    assert {tag for tag, _ in tags} <= {"p", "a", "img"}
    for tag, attrs in tags:
        assert not [name for name in attrs if name.startswith("on") or name == "style"], (tag, attrs)
        for name in ("href", "src"):
            if name in attrs:
                assert attrs[name].split(":", 1)[0] in ("http", "https", "mailto"), (tag, attrs)


def test_raw_html_is_shown_as_text_not_dropped():
    # A requester who types HTML sees it was not taken as markup.
    assert render("<b>bold?</b>") == "<p>&lt;b&gt;bold?&lt;/b&gt;</p>\n"


def test_empty_instructions_render_as_nothing():
    assert render("") == "" and render(None) == ""
