"""In Chromium: the project form's live preview renders every ready config with
the Label Studio front end and no page error, and every page has its icon
(our own SVG), so the browser logs no 404 on any of them.

Label Studio 1.4.0's own console warnings (React and MobX deprecations) are
not ours to fix and are not counted; uncaught exceptions (`pageerror`) and
failed loads are.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotate.labelconfig import TEMPLATES
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
WAIT_MS = 15_000  # Label Studio's bundle on a loaded machine

# What each ready config shows once Label Studio has rendered it on the sample item.
RENDERED = {
    "text_classification": ".ant-checkbox-wrapper:has-text('Positive')",
    "multi_label": ".ant-checkbox-wrapper:has-text('Billing')",
    "named_entities": ".lsf-richtext:has-text('Ada Lovelace worked with Charles Babbage')",
    "image_classification": ".image-element",
    "bounding_boxes": ".konvajs-content canvas",
    "polygons": ".konvajs-content canvas",
    "rating": ".ant-rate",
    "transcription": ".ant-input",
}


def watch(page) -> dict[str, list[str]]:
    """From now on: uncaught exceptions, answers of 400 or more and requests that failed (with their URL)."""
    seen: dict[str, list[str]] = {"pageerror": [], "failed": []}
    page.on("pageerror", lambda error: seen["pageerror"].append(str(error).splitlines()[0]))
    page.on("response", lambda r: r.status >= 400 and seen["failed"].append(f"{r.status} {r.url}"))
    # A media element that restarts a load aborts the first request: nothing failed.
    page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "") and seen["failed"].append(
        f"{r.failure} {r.url}"))
    return seen


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav").first).to_contain_text("API tokens")


def test_every_ready_config_previews_without_a_page_error(live_server, page, shoot, teams):
    requester = teams.requester("Shop")
    seen = watch(page)
    sign_in(page, live_server, requester.person.email)
    page.goto(live_server + "/projects/new")
    preview, problem = page.locator("#preview"), page.locator("#preview-error")
    assert sorted(RENDERED) == sorted(TEMPLATES)  # a new ready config needs its line above
    for key, template in TEMPLATES.items():
        page.select_option("#template-picker", key)
        expect(page.locator("#config-check")).to_contain_text("Valid config", timeout=WAIT_MS)
        expect(preview.locator(RENDERED[key]).first).to_be_visible(timeout=WAIT_MS)
        expect(problem).to_be_hidden()
        expect(preview).not_to_contain_text("Error while processing")  # Label Studio's own words for bad media
        shoot(page, key)
        assert seen["pageerror"] == [], f"{template.title}: {seen['pageerror']}"
    assert seen["failed"] == []  # the ready configs' sample image and sound are served

    # A sound that cannot be loaded: Label Studio's player would throw; the preview plays silence instead.
    page.select_option("#template-picker", "transcription")
    page.fill("#sample-data", '{"audio": "/projects/samples/missing.wav"}')
    expect(page.locator("#sample-note")).to_have_text(
        "Could not load /projects/samples/missing.wav: the preview shows a stand-in.", timeout=WAIT_MS)
    expect(preview.locator(RENDERED["transcription"]).first).to_be_visible(timeout=WAIT_MS)
    page.wait_for_timeout(1000)  # Label Studio decodes the sound after it has drawn
    expect(preview).not_to_contain_text("Error while processing")
    expect(problem).to_be_hidden()
    assert seen["pageerror"] == []
    assert [f for f in seen["failed"] if not f.endswith("/projects/samples/missing.wav")] == []


@pytest.mark.parametrize("who", ["annotator", "requester", "operator"])
def test_every_page_has_our_icon_and_loads_nothing_missing(live_server, page, client, teams, people, who):
    person = {"annotator": lambda: people.make(),
              "requester": lambda: teams.requester("Shop").person,
              "operator": lambda: people.make("operator")}[who]()
    seen = watch(page)
    page.goto(live_server + "/login")
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_attribute("type", "image/svg+xml")
    answer = page.request.get(live_server + icon.get_attribute("href"))
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in answer.body() and b"bounding box" in answer.body()  # ours, not a stock icon
    legacy = page.request.get(live_server + "/favicon.ico")  # tools that ignore the <link>
    assert legacy.status == 200 and legacy.url.endswith(icon.get_attribute("href"))
    sign_in(page, live_server, person.email)
    pages = {"annotator": ["/", "/dashboard", "/dashboard/history", "/profile/", "/account/tokens",
                           "/payroll/earnings", "/work"],
             "requester": ["/", "/projects/", "/projects/new", "/reviews/"],
             "operator": ["/", "/console/", "/console/annotators", "/console/queues", "/console/jobs",
                          "/console/fairness", "/console/audit", "/payroll/", "/operator/users"]}[who]
    for path in pages:
        page.goto(live_server + path)
        page.wait_for_load_state("networkidle")
        expect(page.locator("link[rel=icon]")).to_have_count(1)
    assert seen["failed"] == [] and seen["pageerror"] == []
