"""An annotator in Chromium: signs up, passes a qualification, labels a text
micro-task with the hotkeys and a bounding-box micro-task with the mouse,
gets the next micro-task without a page load, skips one with a reason and
sees the pay pending on the dashboard. Then the errors the API can answer,
said in words; heartbeats and active time; predictions as pre-annotations.

Requesters build the projects through the API, images are real JPEGs made
with Pillow and uploaded like any file; what the page sent is checked in
what the services stored.
"""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from annotate.extensions import db
from annotate.labelconfig import TEMPLATES
from annotate.models import Annotation, Assignment
from annotate.services import work as work_service

pytestmark = pytest.mark.browser

WAIT_MS = 15_000  # Label Studio's 2 MB bundle on a loaded CI machine
TEXT = TEMPLATES["text_classification"]  # hotkeys 1 Positive, 2 Negative, 3 Neutral; required
BOXES = TEMPLATES["bounding_boxes"]


def positive(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def text_project(client, requester, run_jobs, *, title: str = "Reviews", items: list[str] | None = None,
                 gold: list[tuple[str, str, str]] = (), per_task: int = 2, overlap: int = 2,
                 lease_seconds: int = 600, predictions: dict[str, str] | None = None) -> int:
    """A live text-classification project; `gold` holds (text, answer, explanation) for the qualification."""
    headers = requester.headers
    response = client.post("/api/projects/", headers=headers, json={
        "title": title, "label_config": TEXT.xml, "overlap": overlap, "items_per_micro_task": per_task,
        "pay_per_micro_task": 50, "qualification_pay": 20, "estimated_seconds_per_micro_task": 60,
        "lease_seconds": lease_seconds, "qualification_gold_count": len(gold), "qualification_min_accuracy": 0.5,
        "show_predictions": bool(predictions), "unassisted_share": 0.0,
        "instructions": "Pick the **tone** of each review.\n\n- *Positive*: the writer is happy\n"
                        "- *Negative*: the writer is not\n- *Neutral*: neither"})
    assert response.status_code == 201, response.get_json()
    project_id = response.get_json()["id"]
    tasks = []
    for text in items or []:
        task = {"data": {"text": text}}
        if predictions and text in predictions:
            task["predictions"] = [{"result": positive(predictions[text]), "score": 0.9, "model_version": "m1"}]
        tasks.append(task)
    assert client.post(f"/api/projects/{project_id}/import", headers=headers, json=tasks).status_code == 201
    if gold:
        golden = [{"data": {"text": text}, "annotations": [{"result": positive(answer), "explanation": why}]}
                  for text, answer, why in gold]
        assert client.post(f"/api/projects/{project_id}/import?gold=1", headers=headers,
                           json=golden).status_code == 201
    assert client.post(f"/api/projects/{project_id}/publish", headers=headers).status_code == 200
    run_jobs()
    return project_id


def jpeg(shift: int) -> bytes:
    """A street-ish picture: sky, road and a red car whose place moves with `shift`."""
    image = Image.new("RGB", (640, 400), (196, 214, 232))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 280, 640, 400], fill=(90, 90, 96))
    draw.rectangle([120 + shift, 210, 300 + shift, 300], fill=(190, 30, 30))
    draw.ellipse([140 + shift, 280, 180 + shift, 320], fill=(20, 20, 20))
    draw.ellipse([240 + shift, 280, 280 + shift, 320], fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def image_project(client, requester, run_jobs, *, images: int = 4) -> int:
    headers = requester.headers
    response = client.post("/api/projects/", headers=headers, json={
        "title": "Street cars", "label_config": BOXES.xml, "overlap": 2, "items_per_micro_task": 2,
        "pay_per_micro_task": 80, "estimated_seconds_per_micro_task": 90,
        "instructions": "Draw a box around every **car**, as tight as you can."})
    project_id = response.get_json()["id"]
    files = {"file": [(io.BytesIO(jpeg(40 * i)), f"street-{i}.jpg") for i in range(images)]}
    upload = client.post(f"/api/projects/{project_id}/import", headers=headers, data=files,
                         content_type="multipart/form-data")
    assert upload.status_code == 201, upload.get_json()
    run_jobs()
    status = client.get(upload.headers["Location"], headers=headers).get_json()
    assert status["status"] == "finished" and status["result"]["items"] == images, status
    assert client.post(f"/api/projects/{project_id}/publish", headers=headers).status_code == 200
    run_jobs()
    return project_id


def console_errors(page, warnings: bool = False) -> list[str]:
    """From now on, what the page logs as an error in the console (and, with
    `warnings`, as a warning). Chromium also logs each 4xx answer as "Failed
    to load resource": those of the work API are answers the page reads and
    says in words, so these are left out. Every page links our favicon, so
    nothing else may fail to load."""
    errors: list[str] = []

    def note(message) -> None:
        where = message.location.get("url", "")
        if message.type != "error" and not (warnings and message.type == "warning"):
            return
        if message.text.startswith("Failed to load resource: the server responded with a status of 4") \
                and "/api/work/" in where:
            return
        errors.append(f"{message.type}: {message.text.splitlines()[0]} ({where})")

    page.on("console", note)
    return errors


def sign_in(page, live_server: str, person) -> None:
    page.goto(live_server + "/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", person.password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")


def ready(page, assignment: str | None = None) -> str:
    """Wait for a micro-task on the page (another than `assignment`); its assignment id."""
    page.wait_for_function(
        "previous => window.workbench && window.workbench.ready && document.getElementById('workbench')"
        ".dataset.assignment && document.getElementById('workbench').dataset.assignment !== previous",
        arg=assignment or "", timeout=WAIT_MS)
    expect(page.locator("#wb-labeling")).to_be_visible()
    return page.locator("#workbench").get_attribute("data-assignment")


def stored(app, assignment_id: str) -> list[Annotation]:
    with app.app_context():
        rows = db.session.query(Annotation).filter_by(assignment_id=int(assignment_id)).order_by(Annotation.id).all()
        db.session.expunge_all()
        return rows


def item_text(page) -> str:
    return page.locator("#wb-ls").inner_text()


def draw_box(page, label: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Pick the label, then drag a box on the image with the mouse (fractions of the image)."""
    page.locator("#wb-ls .lsf-label", has_text=label).click()
    stage = page.locator("#wb-ls canvas").last
    expect(stage).to_be_visible(timeout=WAIT_MS)
    page.wait_for_function("() => [...document.querySelectorAll('#wb-ls img')].every(i => i.complete)")
    box = stage.bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=12)
    page.mouse.up()
    page.wait_for_function("() => window.workbench.state.store.annotationStore.selected"
                           ".serializeAnnotation().length > 0", timeout=WAIT_MS)


def test_a_new_annotator_qualifies_labels_text_and_boxes_skips_and_sees_pending_pay(
        live_server, page, shoot, client, teams, run_jobs, app):
    requester = teams.requester("Shop")
    reviews = text_project(client, requester, run_jobs, items=[
        "Fast delivery, works great.", "Arrived broken, I want a refund.", "It is a phone case.",
        "Best purchase this year!", "The colour is not as shown.", "Does what it says.",
        "Cheap and cheerful.", "Stopped working after a week."],
        gold=[("I love it, five stars!", "Positive", "Praise is Positive."),
              ("Broken on arrival, refund please.", "Negative", "A complaint is Negative, however polite.")])
    streets = image_project(client, requester, run_jobs)

    # Sign up: every account starts as an annotator.
    errors = console_errors(page)
    page.goto(live_server + "/signup")
    page.fill("input[name=name]", "Noor")
    page.fill("input[name=email]", "noor@example.org")
    page.fill("input[name=password]", "a long enough password")
    page.click("button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Welcome")
    shoot(page, "1-signed-up")

    page.click("nav >> text=Dashboard")
    rows = page.locator("#projects tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Street cars")  # ready to work: first
    expect(rows.nth(1)).to_contain_text("take the qualification test first")
    shoot(page, "2-dashboard-new")

    # The qualification test comes first on the reviews project.
    page.locator(f'#projects tr[data-project="{reviews}"] >> text=Label').click()
    qualification = ready(page)
    page.evaluate("window.marker = 'same page'")
    expect(page.locator("#wb-qualification")).to_be_visible()
    expect(page.locator("#wb-progress")).to_have_text("Item 1 of 2")
    expect(page.locator("#wb-instructions strong")).to_have_text("tone")
    expect(page.locator("#wb-keys")).to_contain_text("Positive")
    expect(page.locator("#wb-lease")).to_contain_text(re.compile(r"\d+:\d\d"))
    shoot(page, "3-qualification-item-1")
    for _ in range(2):  # the praise right, the complaint wrong on purpose
        page.keyboard.press("1" if "five stars" in item_text(page) else "3")
        page.keyboard.press("Control+Enter")
    feedback = page.locator("#wb-feedback")
    expect(feedback).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#wb-feedback-title")).to_have_text("You passed the qualification test")
    expect(page.locator("#wb-feedback-rule")).to_contain_text(
        "You got 1 of 2 gold items right; the rule is at least 1 of 2 gold items right (50%).")
    wrong = feedback.locator("li.wrong")
    expect(wrong).to_contain_text("Broken on arrival")
    expect(wrong).to_contain_text("Your answerNeutral")
    expect(wrong).to_contain_text("ExpectedNegative")
    expect(wrong).to_contain_text("Why it differslabel: expected Negative, you chose Neutral")
    expect(wrong).to_contain_text("A complaint is Negative, however polite.")
    expect(feedback.locator("li.right")).to_contain_text("ExpectedPositive")
    shoot(page, "4-qualification-feedback")

    # Paid work, with the hotkeys; submit brings the next micro-task, on the same page.
    page.click("text=Start the paid work")
    first = ready(page, qualification)
    expect(page.locator("#wb-qualification")).to_be_hidden()
    expect(page.locator("#wb-pay")).to_have_text("pays 0.50 USD for 2 items")
    answers = []
    for i in range(2):
        answers.append("Negative" if "broken" in item_text(page).lower() else "Positive")
        page.keyboard.press("2" if answers[-1] == "Negative" else "1")
        expect(page.locator("#wb-items button").nth(i)).to_have_class(re.compile("done"))
        if i == 0:
            shoot(page, "5-text-item-labeled")
        page.keyboard.press("Control+Enter")
    second = ready(page, first)
    assert page.evaluate("window.marker") == "same page"  # no page load between micro-tasks
    assert page.evaluate("window.workbench.switches.length") == 1
    expect(page.locator("#wb-progress")).to_have_text("Item 1 of 2")
    shoot(page, "6-next-micro-task")
    results = stored(app, first)
    assert [r.result[0]["value"]["choices"] for r in results] == [[a] for a in answers]
    assert all(r.seconds > 0 for r in results) and not any(r.had_prediction for r in results)

    # Skip it, with a reason; the next one comes.
    page.click("#wb-skip")
    dialog = page.locator("#wb-skip-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("text=An item is broken or does not load").click()
    page.fill("#wb-skip-reason", "the second review is cut off")
    shoot(page, "7-skip-dialog")
    page.click("#wb-skip-confirm")
    ready(page, second)
    expect(page.locator("#wb-message")).to_contain_text("Skipped: the micro-task went back to the queue")
    assert page.evaluate("window.marker") == "same page"
    with app.app_context():
        skipped = db.session.get(Assignment, int(second))
        assert (skipped.status, skipped.skip_reason) == (
            "skipped", "An item is broken or does not load: the second review is cut off")

    # Boxes on real images, drawn with the mouse.
    page.goto(f"{live_server}/work?project={streets}")
    boxes = ready(page)
    page.evaluate("window.marker = 'same page'")
    expect(page.locator("#wb-instructions strong")).to_have_text("car")
    draw_box(page, "Car", (0.17, 0.5), (0.50, 0.77))
    shoot(page, "8-box-drawn")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    draw_box(page, "Car", (0.24, 0.5), (0.56, 0.77))
    page.click("text=Submit micro-task")
    ready(page, boxes)
    assert page.evaluate("window.marker") == "same page"
    expect(page.locator("#wb-keys")).to_contain_text("Car")  # Label Studio's own keys for the labels
    shoot(page, "9-next-image-micro-task")
    regions = [r.result for r in stored(app, boxes)]
    assert [len(r) for r in regions] == [1, 1]
    for region in (r[0] for r in regions):
        assert region["type"] == "rectanglelabels" and region["value"]["rectanglelabels"] == ["Car"]
        assert 10 < region["value"]["width"] < 50 and 20 < region["value"]["height"] < 35

    # The dashboard: two micro-tasks and the qualification test pending review.
    page.goto(live_server + "/dashboard")
    expect(page.locator('[data-money="pending"]')).to_contain_text("1.50 USD")  # 0.50 + 0.80 + 0.20
    reviews_row = page.locator(f'#projects tr[data-project="{reviews}"]')
    expect(reviews_row.locator("[data-field=qualification]")).to_have_text("passed")
    expect(reviews_row.locator("[data-field=work-left]")).to_have_text("1 micro-task")  # 4, less 3 she had
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(6)  # the test, 2 submitted, 1 skipped, 2 in progress
    expect(history.filter(has_text="in progress")).to_have_count(2)
    expect(history.filter(has_text="skipped")).to_contain_text("the second review is cut off")
    shoot(page, "10-dashboard-pending")
    run_jobs()  # qualification work is paid whether or not it passed
    page.reload()
    expect(page.locator('[data-money="approved"]')).to_contain_text("0.20 USD")
    expect(page.locator('[data-money="pending"]')).to_contain_text("1.30 USD")
    shoot(page, "11-dashboard-approved")
    assert page.errors + errors == [], "\n".join(page.errors + errors)


def test_api_errors_are_said_in_words(live_server, page, shoot, client, teams, run_jobs, app, people):
    requester = teams.requester("Shop")
    project = text_project(client, requester, run_jobs, items=["First review.", "Second review."])
    worker = people.make()
    errors = console_errors(page)
    page.goto(live_server + "/login")
    page.fill("input[name=email]", worker.email)
    page.fill("input[name=password]", worker.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)

    # 400: an item left without its required answer, named by its place in the micro-task.
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    page.keyboard.press("Control+Enter")
    message = page.locator("#wb-message")
    expect(message).to_have_text(
        'Item 2 of 2: control "label" is required but the result has no region for it. Fix it, then submit again.')
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    shoot(page, "1-validation-error")

    # 409: the lease is gone (skipped from another tab); the answers cannot be stored.
    status = page.evaluate("""id => fetch('/api/work/' + id + '/skip', {method: 'POST', headers: {
        'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content}}).then(r => r.status)""",
                           assignment)
    assert status == 200
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wb-idle-title")).to_have_text("Your lease on this micro-task was lost")
    expect(page.locator("#wb-idle-text")).to_have_text(
        "You skipped this micro-task. Your answers to it could not be stored; ask for new work to go on.")
    expect(message).to_be_hidden()
    shoot(page, "2-lease-lost")

    # 204: nothing left for this annotator.
    page.click("text=Get new work")
    expect(page.locator("#wb-idle-title")).to_have_text("No work for you right now")
    expect(page.locator("#wb-idle-text")).to_contain_text("This project has nothing left that you can take.")
    shoot(page, "3-nothing-left")

    # 403: blocked, with the operator's reason.
    with app.app_context():
        work_service.block(teams.operator.id, worker.id, "too many answers copied from a bot")
    page.click("text=Look again")
    expect(page.locator("#wb-idle-title")).to_have_text("No work can be given to you")
    expect(page.locator("#wb-idle-text")).to_have_text("Your account is blocked: too many answers copied from a bot")
    shoot(page, "4-blocked")
    assert page.errors + errors == [], "\n".join(page.errors + errors)  # the 400, 409, 403 answers are said in words only


def test_heartbeats_keep_the_lease_and_only_active_visible_time_counts(
        live_server, page, client, teams, run_jobs, app, people):
    app.config["WORKBENCH_IDLE_SECONDS"] = 2
    requester = teams.requester("Shop")
    project = text_project(client, requester, run_jobs, items=["One.", "Two."], lease_seconds=30)
    worker = people.make()
    page.goto(live_server + "/login")
    page.fill("input[name=email]", worker.email)
    page.fill("input[name=password]", worker.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)
    with app.app_context():
        first_expiry = db.session.get(Assignment, int(assignment)).lease_expires_at

    # Active: input every half second; a heartbeat goes out within a third of the 30 s lease.
    beats: list[str] = []
    page.on("request", lambda r: r.url.endswith("/heartbeat") and beats.append(r.method))
    for i in range(30):
        page.mouse.move(300 + i, 300)
        page.wait_for_timeout(500)
        if beats:
            break
    assert beats == ["POST"]
    page.wait_for_function("() => window.workbench.state.leaseEnd - performance.now() > 25000")
    with app.app_context():
        assert db.session.get(Assignment, int(assignment)).lease_expires_at > first_expiry

    # Idle for 5 s: only the 2 s after the last input count. Hidden: nothing counts.
    page.keyboard.press("1")
    before = page.evaluate("window.workbench.state.seconds[0]")
    page.wait_for_timeout(5100)
    idle = page.evaluate("window.workbench.state.seconds[0]")
    assert 1.5 <= idle - before <= 3.2, (before, idle)
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.mouse.move(10, 10)  # input while hidden does not count either
    page.wait_for_timeout(2500)
    hidden = page.evaluate("window.workbench.state.seconds[0]")
    assert hidden - idle < 0.2
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.keyboard.press("Control+Enter")
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.getElementById('workbench').dataset.state === 'idle'", timeout=WAIT_MS)
    measured = stored(app, assignment)[0].seconds
    assert abs(measured - hidden) < 1.5, (measured, hidden)


def test_predictions_are_pre_annotations_and_acceptance_is_recorded(
        live_server, page, shoot, client, teams, run_jobs, app, people):
    requester = teams.requester("Shop")
    texts = ["Lovely shoes, they fit.", "Too small and badly sewn."]
    project = text_project(client, requester, run_jobs, items=texts,
                           predictions={texts[0]: "Positive", texts[1]: "Positive"})
    worker = people.make()
    errors = console_errors(page, warnings=True)
    page.goto(live_server + "/login")
    page.fill("input[name=email]", worker.email)
    page.fill("input[name=password]", worker.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)
    checked = page.locator("#wb-ls .ant-checkbox-wrapper-checked")
    expect(checked).to_have_text("Positive[1]")  # the model's answer, shown before any input
    shoot(page, "1-prediction-shown")
    page.keyboard.press("Control+Enter")  # accepted as it is
    expect(checked).to_have_text("Positive[1]")
    page.keyboard.press("1")  # un-tick the model's answer
    page.keyboard.press("2")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.getElementById('workbench').dataset.state === 'idle'", timeout=WAIT_MS)
    by_item = {r.result[0]["value"]["choices"][0]: (r.had_prediction, r.accepted_prediction)
               for r in stored(app, assignment)}
    assert by_item == {"Positive": (True, True), "Negative": (True, False)}
    assert page.errors + errors == [], "\n".join(page.errors + errors)


def sample_media(app) -> None:
    """The files the ready configs' sample items point at, in our media store."""
    import math
    import struct
    import wave
    from pathlib import Path

    folder = Path(app.config["MEDIA_ROOT"]) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("street.jpg", "cat.jpg"):
        (folder / name).write_bytes(jpeg(60))
    with wave.open(str(folder / "hello.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(8000)))


def sample_item(template, **extra) -> dict:
    """The template's sample item with its image or sound in our media store, where sample_media put
    them: the form's preview reads them from /projects/samples/, items may only point at /media/."""
    data = {key: value.replace("/projects/samples/", "/media/samples/") if isinstance(value, str) else value
            for key, value in template.sample_data.items()}
    return {**data, **extra}


def meaning(result: list[dict]) -> list[tuple]:
    """What a result says, without ids and the numbers the front end rounds."""
    out = []
    for region in result:
        value = region["value"]
        said = {k: v for k, v in value.items() if isinstance(v, (list, str, int)) and not isinstance(v, bool)
                and k not in ("x", "y", "width", "height", "points", "rotation")}
        out.append((region["from_name"], region["type"], sorted(said.items())))
    return sorted(out, key=repr)


@pytest.mark.parametrize("kind", list(TEMPLATES))
def test_every_ready_config_renders_and_submits_a_valid_result(
        kind, live_server, page, shoot, client, teams, run_jobs, app, people):
    """Each config the project form offers, on its sample item: Label Studio
    renders it on the labeling page, and the template's answer, loaded into
    the front end and serialised back by it, is accepted by the server."""
    template = TEMPLATES[kind]
    sample_media(app)
    requester = teams.requester("Shop")
    headers = requester.headers
    project = client.post("/api/projects/", headers=headers, json={
        "title": template.title, "label_config": template.xml, "overlap": 1, "items_per_micro_task": 1,
        "pay_per_micro_task": 30, "estimated_seconds_per_micro_task": 30}).get_json()["id"]
    assert client.post(f"/api/projects/{project}/import", headers=headers,
                       json=[{"data": sample_item(template)}]).status_code == 201
    assert client.post(f"/api/projects/{project}/publish", headers=headers).status_code == 200
    run_jobs()
    worker = people.make()
    errors = console_errors(page, warnings=True)
    page.goto(live_server + "/login")
    page.fill("input[name=email]", worker.email)
    page.fill("input[name=password]", worker.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)
    expect(page.locator("#wb-kind")).to_have_text(kind.replace("_", " "))
    if "text" in template.sample_data:
        expect(page.locator("#wb-ls")).to_contain_text(template.sample_data["text"][:20])
    if "image" in template.sample_data:
        page.wait_for_function("() => { const i = document.querySelector('#wb-ls img');"
                               " return i && i.complete && i.naturalWidth === 640; }", timeout=WAIT_MS)
    media_ready(page)
    page.evaluate("""result => {
        const annotation = window.workbench.state.store.annotationStore.selected;
        annotation.deserializeResults(JSON.parse(JSON.stringify(result)));
    }""", template.sample_result)
    page.wait_for_timeout(300)
    shoot(page, kind)
    page.click("text=Submit micro-task")
    page.wait_for_function("document.getElementById('workbench').dataset.state === 'idle'", timeout=WAIT_MS)
    expect(page.locator("#wb-idle-title")).to_have_text("No work for you right now")
    (annotation,) = stored(app, assignment)
    assert meaning(annotation.result) == meaning(template.sample_result)
    assert page.errors + errors == [], "\n".join(page.errors + errors)


def media_ready(page) -> None:
    """Wait until Label Studio has the item's image and its decoded audio, as
    an annotator looks and listens before answering.
    - Image: a box given before the image is measured is sent back in pixels
      where percentages belong (x 1050 for 10.5; seen with 300 ms latency).
    - Audio: Label Studio 1.4.0's <Audio> does not stop loading when its
      item goes, and when the audio is decoded it writes to the gone tag: a
      mobx-state-tree warning in the console, harmless, inside Label Studio.
      The tag may hold its wavesurfer (`_ws`) before that; wavesurfer sets
      `isReady` just before it tells the tag the audio is decoded."""
    page.wait_for_function("""() => [...window.workbench.state.store.annotationStore.names.values()]
        .every(tag => (tag.type !== 'audio' || (tag._ws && tag._ws.isReady))
                      && (tag.type !== 'image' || tag.isReady))""", timeout=WAIT_MS)


def answer(page, result: list[dict]) -> None:
    """Give the current item this answer, as Label Studio's own tools would."""
    page.evaluate("""result => window.workbench.state.store.annotationStore.selected
        .deserializeResults(JSON.parse(JSON.stringify(result)))""", result)


def shown_answer(page) -> list[dict]:
    return page.evaluate("window.workbench.state.store.annotationStore.selected.serializeAnnotation()")


def live_project(client, requester, run_jobs, kind: str, *, items: int, per_task: int,
                 suggestion: list[dict] | None = None, **settings) -> int:
    """A live project of a ready config, `items` copies of its sample item (told apart by "n"), each
    with `suggestion` as its pre-annotation when given; `settings` go to the project."""
    template = TEMPLATES[kind]
    project = client.post("/api/projects/", headers=requester.headers, json={
        "title": template.title, "label_config": template.xml, "overlap": 1, "items_per_micro_task": per_task,
        "pay_per_micro_task": 30, "estimated_seconds_per_micro_task": 30, **settings}).get_json()["id"]
    tasks = [{"data": sample_item(template, n=n)} for n in range(items)]
    if suggestion is not None:
        tasks = [dict(task, predictions=[{"result": suggestion, "score": 0.9}]) for task in tasks]
    assert client.post(f"/api/projects/{project}/import", headers=requester.headers, json=tasks).status_code == 201
    assert client.post(f"/api/projects/{project}/publish", headers=requester.headers).status_code == 200
    run_jobs()
    return project


@pytest.mark.parametrize("kind", list(TEMPLATES))
def test_moving_between_items_and_micro_tasks_logs_nothing_in_the_console(
        kind, live_server, page, client, teams, run_jobs, app, people):
    """Label Studio 1.4.0 logged mobx errors ("reading 'regionStore'" with
    <Text>, "reading 'stageRef'" with boxes) and mobx-state-tree warnings when
    the page swapped items in it: answer item 1, go on, answer item 2, go
    back (the answer is shown again), forward, submit, and the next
    micro-task comes; the console stays empty and both answers are stored."""
    template = TEMPLATES[kind]
    sample_media(app)
    project = live_project(client, teams.requester("Shop"), run_jobs, kind, items=4, per_task=2)
    sign_in(page, live_server, people.make())
    errors = console_errors(page, warnings=True)
    page.goto(f"{live_server}/work?project={project}")
    first = ready(page)
    media_ready(page)
    answer(page, template.sample_result)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    assert shown_answer(page) == []
    media_ready(page)
    answer(page, template.sample_result)
    page.keyboard.press("Control+Shift+Enter")
    expect(page.locator("#wb-progress")).to_have_text("Item 1 of 2")
    assert meaning(shown_answer(page)) == meaning(template.sample_result)
    media_ready(page)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    media_ready(page)
    page.click("text=Submit micro-task")
    ready(page, first)
    expect(page.locator("#wb-progress")).to_have_text("Item 1 of 2")
    assert shown_answer(page) == []
    page.wait_for_timeout(300)  # what Label Studio does after the render (image and audio loads) included
    assert [meaning(a.result) for a in stored(app, first)] == [meaning(template.sample_result)] * 2
    assert page.errors + errors == [], "\n".join(page.errors + errors)


def test_micro_tasks_of_other_configs_follow_on_one_page_in_one_label_studio(
        live_server, page, client, teams, run_jobs, app, people):
    """Work from projects with other configs, one after the other: the page
    replaces the Label Studio instance (never two at once) without a page
    load, and nothing is logged in the console."""
    sample_media(app)
    requester = teams.requester("Shop")
    kinds = ["named_entities", "bounding_boxes", "transcription", "text_classification"]
    for kind in kinds:
        live_project(client, requester, run_jobs, kind, items=1, per_task=1)
    sign_in(page, live_server, people.make())
    errors = console_errors(page, warnings=True)
    page.goto(f"{live_server}/work")
    page.evaluate("window.marker = 'same page'")
    assignment, done = None, []
    for _ in kinds:
        assignment = ready(page, assignment)
        kind = page.evaluate("window.workbench.state.setup.config_kind")
        expect(page.locator("#wb-kind")).to_have_text(kind.replace("_", " "))
        assert page.evaluate("window.LabelStudio.instances.size") == 1
        assert page.locator("#wb-ls .ls-editor").count() == 1
        media_ready(page)
        answer(page, TEMPLATES[kind].sample_result)
        page.click("text=Submit micro-task")
        done.append((kind, assignment))
    expect(page.locator("#wb-idle-title")).to_have_text("No work for you right now", timeout=WAIT_MS)
    assert sorted(kind for kind, _ in done) == sorted(kinds)
    assert page.evaluate("window.marker") == "same page"
    for kind, assignment in done:
        assert [meaning(a.result) for a in stored(app, assignment)] == [meaning(TEMPLATES[kind].sample_result)]
    assert page.errors + errors == [], "\n".join(page.errors + errors)


def test_a_fast_annotator_s_keys_land_on_the_items_they_were_meant_for(
        live_server, page, client, teams, run_jobs, app, people):
    """Hotkeys, Ctrl+Enter and the submit click as fast as the keyboard goes,
    with no wait for each item: keys that come while the page swaps items are
    held for the new item, so each answer lands on its own item."""
    requester = teams.requester("Shop")
    texts = ["One.", "Two.", "Three.", "Four."]
    project = text_project(client, requester, run_jobs, items=texts, per_task=4, overlap=1)
    sign_in(page, live_server, people.make())
    errors = console_errors(page, warnings=True)
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)
    shown = page.evaluate("window.workbench.state.work.items.map(item => item.data.text)")  # in the page's order
    for key in ("1", "Control+Enter", "2", "Control+Enter", "3", "Control+Enter", "1"):
        page.keyboard.press(key)
    page.click("#wb-next")  # "Submit micro-task", clicked at once
    page.wait_for_function("document.getElementById('workbench').dataset.state === 'idle'", timeout=WAIT_MS)
    expect(page.locator("#wb-idle-title")).to_have_text("No work for you right now")
    by_text = {}
    with app.app_context():
        from annotate.models import Item

        for annotation in stored(app, assignment):
            by_text[db.session.get(Item, annotation.item_id).data["text"]] = annotation.result[0]["value"]["choices"]
    assert [by_text[text] for text in shown] == [["Positive"], ["Negative"], ["Neutral"], ["Positive"]]
    assert page.errors + errors == [], "\n".join(page.errors + errors)
