"""Model assistance in Chromium: the built-in learner's suggestion is the
starting point and one key accepts it; a backend that is down is said in words
while the annotator labels on; the requester sees the models and the panel."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from annotate.extensions import db
from annotate.labelconfig import TEMPLATES
from annotate.models import MLBackend, Project
from tests.browser.test_workbench import (TEXT, WAIT_MS, console_errors, live_project, meaning, media_ready,
                                          positive, ready, sample_media, stored)

pytestmark = pytest.mark.browser

GOOD = ["lovely shoes", "great fit", "good value", "superb laces", "fine leather"]
BAD = ["awful smell", "bad stitching", "poor sole", "broken heel", "terrible box"]


def sign_in(page, live_server, person) -> None:
    page.goto(live_server + "/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button[type=submit]")


def assisted_project(client, requester, run_jobs, items: list[str], **settings) -> int:
    headers = requester.headers
    response = client.post("/api/projects/", headers=headers, json={
        "title": "Shoes", "label_config": TEXT.xml, "overlap": 1, "items_per_micro_task": 2,
        "pay_per_micro_task": 30, "estimated_seconds_per_micro_task": 30, "show_predictions": True,
        "unassisted_share": 0.0, **settings})
    assert response.status_code == 201, response.get_json()
    project = response.get_json()["id"]
    assert client.post(f"/api/projects/{project}/import", headers=headers,
                       json=[{"text": t} for t in items]).status_code == 201
    if settings.get("assist") == "builtin":
        # Gold answers are enough for a first model: two of each sentence, four times over.
        golden = [{"data": {"text": f"{t} {n}"}, "annotations": [{"result": positive(label)}]}
                  for n in range(2) for texts, label in ((GOOD, "Positive"), (BAD, "Negative")) for t in texts]
        assert client.post(f"/api/projects/{project}/import?gold=1", headers=headers,
                           json=golden).status_code == 201
    assert client.post(f"/api/projects/{project}/publish", headers=headers).status_code == 200
    run_jobs()
    return project


def test_the_builtin_suggestion_is_accepted_with_one_key(live_server, page, shoot, client, teams, run_jobs, app,
                                                         people):
    requester = teams.requester("Shoes")
    project = assisted_project(client, requester, run_jobs, ["great leather fit", "awful broken sole"],
                               assist="builtin")
    sign_in(page, live_server, people.make())
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)
    expect(page.locator("#wb-prediction")).to_contain_text("builtin-v1")
    expect(page.locator("#wb-prediction")).to_contain_text("Ctrl+Enter to accept it")
    checked = page.locator("#wb-ls .ant-checkbox-wrapper-checked")
    expect(checked).to_have_count(1)
    first = checked.inner_text()
    shoot(page, "1-suggestion")
    page.keyboard.press("Control+Enter")  # item 1: the suggestion as it is
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    page.keyboard.press("Control+Enter")  # item 2 too: the micro-task goes in
    page.wait_for_function("document.getElementById('workbench').dataset.state === 'idle'", timeout=WAIT_MS)
    rows = stored(app, assignment)
    assert [(r.had_prediction, r.accepted_prediction) for r in rows] == [(True, True), (True, True)]
    assert first.startswith(rows[0].result[0]["value"]["choices"][0])
    assert page.errors == []

    # The requester's page shows the model and what annotators did with it.
    page.context.clear_cookies()
    sign_in(page, live_server, requester.person)
    page.goto(f"{live_server}/projects/{project}#assist")
    panel = page.locator("#assist")
    expect(panel).to_contain_text("builtin-v1")
    expect(panel.locator("table.anchoring")).to_contain_text("(2 of 2)")
    shoot(page, "2-panel")


# Suggestions as an ML backend may send them: a box without its rotation, a span without its text.
REGION_SUGGESTIONS = {
    "bounding_boxes": [{"from_name": "label", "to_name": "image", "type": "rectanglelabels",
                        "value": {"x": 10.5, "y": 20, "width": 30, "height": 25.25, "rectanglelabels": ["Car"]}}],
    "named_entities": [{"from_name": "label", "to_name": "text", "type": "labels",
                        "value": {"start": 0, "end": 12, "labels": ["PER"]}}],
}


@pytest.mark.parametrize("kind", list(REGION_SUGGESTIONS))
def test_a_region_suggestion_accepted_with_one_key_counts_as_accepted_unchanged(
        kind, live_server, page, client, teams, run_jobs, app, people):
    """Label Studio hands a region back in its own float arithmetic (19.999999999999996 for 20) and
    with what it fills in (rotation 0, the span's text): the server still records the suggestion as
    accepted unchanged, so the anchoring panel counts it."""
    sample_media(app)
    template = TEMPLATES[kind]
    suggestion = REGION_SUGGESTIONS[kind]
    project = live_project(client, teams.requester("Regions"), run_jobs, kind, items=1, per_task=1,
                           suggestion=suggestion, show_predictions=True, unassisted_share=0.0)
    sign_in(page, live_server, people.make())
    errors = console_errors(page, warnings=True)
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)
    media_ready(page)
    if kind == "named_entities":
        # Label Studio 1.4.0 draws a suggested span as it loads, then tries again and logs "Spans
        # already created": that warning, and only it, is let through, once the span is there once.
        expect(page.locator("#wb-ls .htx-highlight")).to_have_text(["Ada Lovelace"])
        errors[:] = [e for e in errors if not e.startswith("warning: Spans already created ")]
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.getElementById('workbench').dataset.state === 'idle'", timeout=WAIT_MS)
    [row] = stored(app, assignment)
    assert (row.had_prediction, row.accepted_prediction) == (True, True)
    # The suggestion is the template's first sample region with those fields left out.
    assert meaning(row.result) == meaning(template.sample_result[:1])
    assert page.errors + errors == [], "\n".join(page.errors + errors)


def test_a_backend_that_is_down_is_said_in_words(live_server, page, client, teams, run_jobs, app, people):
    with app.app_context():
        with db.transaction() as session:
            session.add(MLBackend(name="gone", url="http://127.0.0.1:9"))
    requester = teams.requester("Shoes")
    project = assisted_project(client, requester, run_jobs, ["nice shoes", "old shoes"], assist="backend",
                               ml_backend_url="http://127.0.0.1:9")
    with app.app_context():
        error = db.session.scalar(select(Project.assist_error).where(Project.id == project))
    assert error  # the prediction job found nothing listening
    sign_in(page, live_server, people.make())
    page.goto(f"{live_server}/work?project={project}")
    ready(page)
    expect(page.locator("#wb-prediction")).to_contain_text("The model is unavailable")
    expect(page.locator("#wb-prediction")).to_contain_text("label these items without pre-annotations")
    expect(page.locator("#wb-ls .ant-checkbox-wrapper-checked")).to_have_count(0)
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    assert page.errors == []
