"""A requester in Chromium: creates a project from a ready config while the
Label Studio preview follows the config, sees a bad config refused in words,
uploads a JSONL file, watches the import finish and sees the items."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

BOGUS = "<View><Text name='t' value='$text'/><Bogus name='b' toName='t'/></View>"
WAIT_MS = 15_000  # Label Studio's 2 MB bundle on a loaded CI machine


def sign_in(page, base: str, person) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav")).to_contain_text("Projects")


def test_a_requester_creates_a_project_uploads_items_and_sees_them(live_server, page, shoot, teams, run_jobs,
                                                                    tmp_path):
    requester = teams.requester("Shop")
    sign_in(page, live_server, requester.person)
    page.click("nav >> text=Projects")
    page.click("text=New project")

    # The form starts from the text classification config, previewed.
    preview = page.locator("#preview")
    expect(preview.locator(".ant-checkbox-wrapper", has_text="Positive")).to_be_visible(timeout=WAIT_MS)

    # Another ready config fills the XML, and Label Studio renders it on its sample item.
    page.select_option("#template-picker", "multi_label")
    expect(page.locator("#label_config")).to_have_value(re.compile('<Choice value="Billing"/>'))
    expect(preview.locator(".ant-checkbox-wrapper", has_text="Billing")).to_be_visible(timeout=WAIT_MS)
    expect(preview).to_contain_text("I was charged twice")
    expect(page.locator("#config-check")).to_have_text(
        "Valid config (multi label). Each item needs text.", timeout=WAIT_MS)
    shoot(page, "1-ready-config-preview")

    # Editing the sample item re-renders the preview.
    page.fill("#sample-data", '{"text": "Where is my parcel?"}')
    expect(preview).to_contain_text("Where is my parcel?", timeout=WAIT_MS)

    # A config the server refuses is named in words before saving, and on save.
    page.fill("#label_config", BOGUS)
    expect(page.locator("#config-check")).to_contain_text("unknown tag <Bogus>", timeout=WAIT_MS)
    expect(preview).to_have_text("No preview until the label config is valid.")
    page.fill("#title", "Support tickets")
    page.click("button:has-text('Create project')")
    expect(page.locator("p.error[role=alert]")).to_contain_text("label_config: unknown tag <Bogus> at line 1")
    expect(page.locator("#config-check")).to_contain_text("unknown tag <Bogus>", timeout=WAIT_MS)
    expect(page.locator("#title")).to_have_value("Support tickets")
    shoot(page, "2-bad-config-refused")

    page.once("dialog", lambda dialog: dialog.accept())  # "replace your label config?"
    page.select_option("#template-picker", "text_classification")
    expect(preview.locator(".ant-checkbox-wrapper", has_text="Positive")).to_be_visible(timeout=WAIT_MS)

    # Money is entered in minor units, and said in major units beside the field.
    page.fill("#pay_per_micro_task", "150")
    expect(page.locator("[data-hint-for=pay_per_micro_task]")).to_have_text("= 1.50 USD")
    page.fill("#currency", "JPY")
    expect(page.locator("[data-hint-for=pay_per_micro_task]")).to_have_text("= 150 JPY")
    page.fill("#currency", "EUR")
    page.fill("#instructions", "Pick the **tone** of the review.")
    page.click("button:has-text('Create project')")
    expect(page.locator("h1")).to_contain_text("Support tickets")
    expect(page.locator(".markdown strong")).to_have_text("tone")
    expect(page.locator("body")).to_contain_text("1.50 EUR")
    shoot(page, "3-project-created")

    # Upload a JSONL file, and follow the import while a worker runs it.
    upload = tmp_path / "reviews.jsonl"
    upload.write_text('{"text": "Great service, fast delivery."}\n{"text": "The parcel arrived broken."}\n'
                      '{"data": {"text": "It is fine."}}\n')
    page.click("text=Upload items")
    expect(page.locator("dl.limits")).to_contain_text("1,000,000")
    page.set_input_files("#file", str(upload))
    page.click("button:has-text('Upload')")
    status = page.locator("[data-field=status]")
    expect(status).to_have_text("queued")
    shoot(page, "4-import-queued")
    run_jobs()
    expect(status).to_have_text("finished", timeout=WAIT_MS)  # the page polls the API
    expect(page.locator("[data-field=result]")).to_have_text("Added 3 items.")
    expect(page.locator("[data-field=rows]")).to_have_text("3 of 3 rows checked")
    shoot(page, "5-import-finished")

    page.click("text=See the project's items")
    rows = page.locator("table.items tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("The parcel arrived broken.")
    expect(page.locator(".counts")).to_contain_text("3 items")
    shoot(page, "6-items-listed")
    assert page.errors == []


def test_a_bad_upload_shows_each_problem_with_file_and_line(live_server, page, shoot, teams, run_jobs, tmp_path):
    requester = teams.requester("Shop")
    sign_in(page, live_server, requester.person)
    page.goto(live_server + "/projects/new")
    page.fill("#title", "Reviews")
    page.click("button:has-text('Create project')")
    page.click("text=Upload items")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"body": "no text"}\n{"text": "fine"}\n')
    page.set_input_files("#file", str(bad))
    page.click("button:has-text('Upload')")
    run_jobs()
    expect(page.locator("[data-field=status]")).to_have_text("failed", timeout=WAIT_MS)
    problems = page.locator(".problems li")
    expect(problems.first).to_contain_text('bad.jsonl, line 2: ')
    expect(problems.first).to_contain_text('"text"')
    expect(problems.nth(1)).to_contain_text("bad.jsonl, line 3: duplicate of bad.jsonl, line 1")
    expect(page.locator("[data-field=error]")).to_contain_text("nothing was stored")
    shoot(page, "import-failed")


def test_image_and_audio_configs_preview_on_their_drawn_samples(live_server, page, shoot, teams):
    requester = teams.requester("Vision")
    sign_in(page, live_server, requester.person)
    page.goto(live_server + "/projects/new")
    preview = page.locator("#preview")

    # The ready bounding-box config shows its sample street, served by the app (no stand-in).
    page.select_option("#template-picker", "bounding_boxes")
    expect(preview.locator(".lsf-label", has_text="Car")).to_be_visible(timeout=WAIT_MS)
    image = preview.locator("img[src$='/projects/samples/street.jpg']").first
    expect(image).to_be_visible(timeout=WAIT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                           timeout=WAIT_MS)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1920, 1080]
    expect(page.locator("#sample-note")).to_be_hidden()
    shoot(page, "bounding-boxes-preview")

    # The audio transcription config loads its sample sound.
    with page.expect_response(lambda r: r.url.endswith("/projects/samples/hello.wav") and r.request.method == "GET",
                              timeout=WAIT_MS) as sound:
        page.select_option("#template-picker", "transcription")
    assert sound.value.status in (200, 206) and sound.value.headers["content-type"] == "audio/wav"
    expect(preview.locator("textarea").first).to_be_visible(timeout=WAIT_MS)
    shoot(page, "transcription-preview")

    # A sample image that cannot be loaded is replaced by a drawn stand-in, and the page says so.
    page.select_option("#template-picker", "image_classification")
    page.fill("#sample-data", '{"image": "/media/no/such.jpg"}')
    expect(page.locator("#sample-note")).to_contain_text("Could not load /media/no/such.jpg", timeout=WAIT_MS)
    expect(preview.locator("img[src^='data:image/svg+xml']").first).to_be_visible(timeout=WAIT_MS)
    assert page.errors == []
