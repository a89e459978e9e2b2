"""A requester's project pages: create, edit, pause, archive and delete a
project through its forms, upload items and follow the import, and who may
see what."""
from __future__ import annotations

import io
import json
import re

import pytest

from annotate.extensions import db
from annotate.labelconfig import TEMPLATES
from annotate.models import Project
from annotate.services import projects
from annotate.web.projects import GROUPS, duration, form_field, money
from tests.conftest import TEXT_CONFIG, choice

BOGUS_CONFIG = "<View><Text name='t' value='$text'/><Bogus name='b' toName='t'/></View>"


def form(**fields) -> dict:
    base = {"title": "Product reviews", "description": "Reviews from the shop", "label_config": TEXT_CONFIG,
            "instructions": "Read the **whole** review.", "overlap": "3", "max_overlap": "3",
            "items_per_micro_task": "10", "pay_per_micro_task": "150", "currency": "EUR", "lease_seconds": "900"}
    return {**base, **fields}


def create(client, **fields) -> str:
    response = client.post("/projects/new", data=form(**fields))
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def text(response) -> str:
    return response.get_data(as_text=True)


def field_block(page: str, name: str) -> str:
    """The <div class="field"> that holds the input called `name`."""
    match = re.search(r'<div class="field[^"]*">(?:(?!<div class="field).)*?name="%s".*?</div>' % name, page, re.S)
    assert match, f"no field {name} on the page"
    return match.group(0)


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def make_live(app, path: str) -> None:
    # Publishing is not on these pages; the tests only need a live project.
    with app.app_context(), db.transaction() as session:
        session.get(Project, int(path.rsplit("/", 1)[1])).status = "live"


@pytest.fixture
def requester(client, auth, teams):
    person = teams.requester("Shop")
    auth.login(person.person)
    return person


# --- the form -------------------------------------------------------------------


def test_every_setting_is_in_exactly_one_group_of_the_form():
    grouped = [name for _, names in GROUPS for name in names]
    assert sorted(grouped) == sorted(projects.SETTINGS) and len(grouped) == len(set(grouped))


def test_the_new_form_offers_every_setting_with_its_bounds_defaults_and_ready_configs(client, requester):
    page = text(client.get("/projects/new"))
    for name, setting in projects.SETTINGS.items():
        block = field_block(page, name)
        if form_field(name).widget == "number":
            assert f'min="{number(setting.minimum)}"' in block and f'max="{number(setting.maximum)}"' in block, name
            assert 'step="' in block
    assert 'name="overlap" id="overlap" value="3"' in page
    assert 'name="currency" id="currency" value="USD"' in page
    assert 'data-hint="money"' in field_block(page, "pay_per_micro_task")
    assert "annotators per micro-task (k)" in page  # help text from the service's settings
    for template in TEMPLATES.values():
        assert template.title in page
    assert "&lt;Choice value=&#34;Positive&#34; hotkey=&#34;1&#34;/&gt;" in page  # text classification to start from
    assert "label-studio/build/static/js/main.js" in page


def test_create_edit_pause_archive_and_delete_through_the_forms(client, requester, app):
    path = create(client, title="Product reviews", pay_per_micro_task="150", currency="eur",
                  content_categories="Medical, violence", show_predictions="on")
    page = text(client.get(path))
    assert "<h1>Product reviews" in page and "Shop" in page and 'status-draft">draft' in page
    assert "150 <span class=\"muted\">= 1.50 EUR</span>" in page
    assert "<strong>whole</strong>" in page  # instructions are Markdown
    assert "medical, violence" in page and "<dd>yes</dd>" in page
    assert "No items yet" in page and "Pause</button>" not in page

    edit = text(client.get(path + "/edit"))
    assert 'value="Product reviews"' in edit and "Read the **whole** review." in edit
    assert 'name="content_categories" id="content_categories" value="medical, violence"' in edit
    response = client.post(path + "/edit", data=form(title="Reviews, second round", lease_seconds="600",
                                                     content_categories=""))
    assert response.status_code == 302
    page = text(client.get(path))
    assert "Reviews, second round" in page and "600 s <span class=\"muted\">= 10 min</span>" in page
    assert "<dd>no</dd>" in page  # the unticked checkbox turned show_predictions off

    make_live(app, path)
    assert "Pause</button>" in text(client.get(path))
    client.post(path + "/pause")
    page = text(client.get(path))
    assert 'status-paused">paused' in page and "Project paused" in page

    client.post(path + "/archive")
    page = text(client.get(path))
    assert 'badge archived">archived' in page and "Archive</button>" not in page
    assert "Reviews, second round" not in text(client.get("/projects/"))
    assert "Reviews, second round" in text(client.get("/projects/?archived=1"))

    response = client.post(path + "/delete")
    assert response.headers["Location"] == "/projects/"
    assert "Project deleted." in text(client.get("/projects/"))
    assert client.get(path).status_code == 404


def test_the_project_list_shows_status_and_counts(client, requester, run_jobs):
    path = create(client, title="Listed project")
    client.post(path + "/upload", data={"file": [(io.BytesIO(b'{"text": "a"}\n{"text": "b"}\n'), "a.jsonl")]},
                content_type="multipart/form-data")
    run_jobs()
    page = text(client.get("/projects/"))
    row = re.search(r"<tr>\s*<td><a href=\"%s\">Listed project</a>.*?</tr>" % path, page, re.S).group(0)
    assert 'status-draft">draft' in row and '<td class="num">2</td>' in row and "0 of 0" in row


@pytest.mark.parametrize("fields,name,words,status", [
    ({"overlap": "0"}, "overlap", "overlap must be at least 1", 400),
    ({"overlap": "4", "max_overlap": "2"}, "max_overlap", "max_overlap (2) cannot be below overlap (4)", 400),
    ({"pay_per_micro_task": "1.5"}, "pay_per_micro_task", "pay_per_micro_task must be a whole number", 400),
    ({"currency": "dollars"}, "currency", "three-letter ISO 4217 code", 400),
    ({"gold_share": "0.9"}, "gold_share", "gold_share must be at most 0.5", 400),
    ({"label_config": BOGUS_CONFIG}, "label_config", "unknown tag &lt;Bogus&gt;", 400),
    ({"title": ""}, "title", "title must be at least 1 characters", 400),
])
def test_a_bad_field_is_named_beside_it_and_the_input_is_kept(client, requester, fields, name, words, status):
    response = client.post("/projects/new", data=form(**{"title": "My typed title", **fields}))
    assert response.status_code == status
    page = text(response)
    block = field_block(page, name) if name != "label_config" else page
    assert words in block
    if name != "label_config":
        assert "has-error" in block
    assert 'value="My typed title"' in page or name == "title"
    assert "Read the **whole** review." in page  # the rest of the input is kept
    for value in fields.values():
        assert (value.replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")) in page
    assert "Product reviews" not in text(client.get("/projects/"))


def test_a_published_project_refuses_a_change_of_its_micro_tasks_with_409(client, requester, app):
    path = create(client)
    make_live(app, path)
    edit = text(client.get(path + "/edit"))
    assert re.search(r'name="items_per_micro_task"[^>]*readonly', edit)
    response = client.post(path + "/edit", data=form(items_per_micro_task="20", title="Changed"))
    assert response.status_code == 409
    assert "items_per_micro_task cannot change once the project is published" in field_block(text(response),
                                                                                            "items_per_micro_task")
    assert 'value="Changed"' in text(response)


def test_pausing_a_draft_is_refused_in_words_on_the_project_page(client, requester):
    path = create(client)
    response = client.post(path + "/pause")
    assert response.status_code == 409
    assert "only a live project can be paused; this one is draft" in text(response)
    assert "<h1>Product reviews" in text(response)


def test_a_requester_in_no_team_is_told_why_they_cannot_create(client, auth, people):
    auth.login(people.make("requester"))
    assert "You are in no team" in text(client.get("/projects/new"))
    response = client.post("/projects/new", data=form())
    assert response.status_code == 403 and "an operator must add you to one" in text(response)


def test_a_requester_of_two_teams_picks_the_team(client, auth, teams, app):
    first = teams.requester("Vision")
    with app.app_context():
        from annotate.services import teams as team_service

        other = team_service.create_team(teams.operator.id, "Speech")
        team_service.add_member(teams.operator.id, other, first.person.email)
    auth.login(first.person)
    assert '<option value="%d">Speech</option>' % other in text(client.get("/projects/new"))
    path = create(client, team=str(other))
    assert "Speech" in text(client.get(path))


# --- the label config check ---------------------------------------------------------


def test_the_config_check_answers_kind_and_data_keys_or_the_error(client, requester):
    good = client.post("/projects/check-config", json={"label_config": TEMPLATES["bounding_boxes"].xml}).get_json()
    assert good == {"ok": True, "error": None, "kind": "bounding_boxes", "data_keys": ["image"],
                    "media_keys": ["image"]}
    bad = client.post("/projects/check-config", json={"label_config": BOGUS_CONFIG}).get_json()
    assert bad["ok"] is False and "unknown tag <Bogus>" in bad["error"] and bad["data_keys"] == []
    broken = client.post("/projects/check-config", json={"label_config": "<View><Text"}).get_json()
    assert "not well-formed XML at line 1" in broken["error"]


# --- uploads -----------------------------------------------------------------------------


def upload(client, path, *files, gold=False):
    data = {"file": [(io.BytesIO(content.encode()), name) for name, content in files]}
    if gold:
        data["gold"] = "on"
    return client.post(path + "/upload", data=data, content_type="multipart/form-data")


def test_the_upload_page_shows_the_limits_and_the_keys_items_need(client, requester, app):
    path = create(client)
    page = text(client.get(path + "/upload"))
    assert "Each item needs <code>text</code>" in page
    assert "1,000,000" in page and "25.0 MiB" in page and "512.0 MiB" in page and "10,000" in page
    assert 'multiple accept=".csv,.jpeg,.jpg,.json,.jsonl,.png,.tsv,.txt,.webp,.zip"' in page


def test_an_upload_is_followed_to_its_end_and_its_items_are_listed(client, requester, run_jobs):
    path = create(client)
    response = upload(client, path, ("reviews.jsonl", '{"text": "Great service"}\n{"text": "Arrived broken"}\n'))
    assert response.status_code == 302
    status_path = response.headers["Location"]
    page = text(client.get(status_path))
    assert 'data-field="status">queued' in page and "reviews.jsonl" in page
    assert re.search(r'data-import-url="/api/projects/\d+/imports/\d+/?"', page)
    run_jobs()
    page = text(client.get(status_path))
    assert 'data-field="status">finished' in page and "Added 2 items." in page and "2 of 2 rows checked" in page
    page = text(client.get(path))
    assert "Great service" in page and "Arrived broken" in page and "<strong>2</strong> items" in page


def test_a_failed_upload_lists_each_problem_with_file_and_line(client, requester, run_jobs):
    path = create(client)
    bad = '{"text": "fine"}\n{"body": "no text"}\n{"text": \n'
    status_path = upload(client, path, ("bad.jsonl", bad)).headers["Location"]
    run_jobs()
    page = text(client.get(status_path))
    assert 'data-field="status">failed' in page and "nothing was stored" in page
    assert re.search(r'<span class="where">bad.jsonl, line 2</span>: [^<]*has no &#34;text&#34;', page)
    assert '<span class="where">bad.jsonl, line 3</span>' in page
    assert "bad.jsonl, line 2" in text(client.get(path))  # the project page lists the import's problems too


def test_gold_items_are_uploaded_with_the_checkbox(client, requester, run_jobs):
    path = create(client)
    gold = json.dumps([{"data": {"text": "I love it"}, "annotations": [{"result": choice("Positive")}]}])
    upload(client, path, ("gold.json", gold), gold=True)
    run_jobs()
    page = text(client.get(path))
    assert "<strong>1</strong> gold items" in page and "<strong>0</strong> items" in page


@pytest.mark.parametrize("files,words", [
    ((), "choose at least one file to upload"),
    ((("notes.exe", "x"),), ".exe"),
])
def test_an_upload_without_usable_files_is_refused_beside_the_file_field(client, requester, files, words):
    path = create(client)
    response = upload(client, path, *files, gold=True)
    assert response.status_code == 400
    assert words in field_block(text(response), "file")
    assert 'name="gold" id="gold" checked' in text(response)  # the choice is kept


# --- who may see what -------------------------------------------------------------------


def project_pages(path: str, import_path: str) -> list[tuple[str, str]]:
    return [("GET", path), ("GET", path + "/edit"), ("POST", path + "/edit"), ("GET", path + "/upload"),
            ("POST", path + "/upload"), ("GET", import_path), ("POST", path + "/pause"),
            ("POST", path + "/archive"), ("POST", path + "/delete")]


def test_another_team_gets_404_and_an_annotator_403_on_every_project_page(client, auth, teams, people):
    owner = teams.requester("Shop")
    auth.login(owner.person)
    path = create(client, title="Secret project")
    import_path = upload(client, path, ("a.jsonl", '{"text": "a"}\n')).headers["Location"]
    auth.logout()

    stranger = teams.requester("Other team")
    auth.login(stranger.person)
    for method, url in project_pages(path, import_path):
        response = client.open(url, method=method, data=form(title="Taken over"))
        assert response.status_code == 404, (method, url)
        assert "Secret project" not in text(response)
    assert "Secret project" not in text(client.get("/projects/"))
    auth.logout()

    auth.login(people.make())
    for method, url in [*project_pages(path, import_path), ("GET", "/projects/"), ("GET", "/projects/new"),
                        ("POST", "/projects/new"), ("POST", "/projects/check-config")]:
        response = client.open(url, method=method, data=form())
        assert response.status_code == 403, (method, url)
        assert "Secret project" not in text(response)
    assert 'href="/projects/"' not in text(client.get("/"))  # no Projects link for annotators
    auth.logout()

    assert client.get(path).status_code == 302  # anonymous: to the sign-in page
    auth.login(teams.operator)
    assert "Secret project" in text(client.get("/projects/")) and "Secret project" in text(client.get(path))


def test_instructions_cannot_carry_a_script_onto_the_project_page(client, requester):
    path = create(client, instructions="<script>alert(1)</script> [x](javascript:alert(2)) "
                                       "<img src=x onerror=alert(3)>")
    page = text(client.get(path))
    assert "<script>alert" not in page and 'href="javascript:' not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- formatting and the service function the form uses ----------------------------------


def test_money_and_durations_are_shown_in_words():
    assert money(150, "USD") == "1.50 USD" and money(5, "EUR") == "0.05 EUR" and money(-1234, "GBP") == "-12.34 GBP"
    assert money(500, "JPY") == "500 JPY" and money(1500, "KWD") == "1.500 KWD"
    assert duration(900) == "15 min" and duration(3 * 86400 + 3600) == "3 d 1 h" and duration(0) == "0 s"


def test_default_settings_are_what_a_new_project_gets(app, teams):
    requester = teams.requester()
    with app.app_context():
        defaults = projects.default_settings()
        assert set(defaults) == set(projects.SETTINGS)
        project = projects.get_project(requester.person.id, projects.create_project(
            requester.person.id, None, {"title": "x", "label_config": TEXT_CONFIG}))
        for name, value in defaults.items():
            if name != "title":
                assert getattr(project, name) == value, name


# --- media ------------------------------------------------------------------------------


@pytest.fixture
def stored_image(app):
    """A file in MEDIA_ROOT named by its hash, as ingest stores images, and a
    secret beside MEDIA_ROOT that no URL may reach."""
    from pathlib import Path

    root = Path(app.config["MEDIA_ROOT"])
    (root / "ab" / "cd").mkdir(parents=True)
    (root / "ab" / "cd" / "abcd1234.jpg").write_bytes(b"\xff\xd8\xff fake jpeg")
    (root.parent / "secret.txt").write_text("do not serve")
    return "/media/ab/cd/abcd1234.jpg"


def test_media_is_served_to_signed_in_users_with_long_cache_headers(client, auth, people, stored_image):
    assert client.get(stored_image).status_code == 302  # anonymous: to the sign-in page
    auth.login(people.make())  # any signed-in user: annotators label these images
    response = client.get(stored_image)
    assert response.status_code == 200 and response.data == b"\xff\xd8\xff fake jpeg"
    assert response.mimetype == "image/jpeg"
    cache = response.cache_control
    assert cache.max_age == 365 * 24 * 3600 and cache.immutable and cache.private and not cache.public
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/media/ab/cd/missing.jpg").status_code == 404


@pytest.mark.parametrize("path", [
    "/media/../secret.txt",
    "/media/..%2fsecret.txt",
    "/media/ab/../../secret.txt",
    "/media/ab/cd/..%2F..%2F..%2Fsecret.txt",
    "/media/%2e%2e/secret.txt",
    "/media//etc/passwd",
    "/media/%2Fetc%2Fpasswd",
    "/media/ab/cd/..\\..\\..\\secret.txt",
])
def test_a_path_outside_media_root_is_404(client, auth, people, stored_image, path):
    auth.login(people.make("operator"))
    response = client.get(path, follow_redirects=True)  # Werkzeug merges "//" with a redirect first
    assert response.status_code == 404, path
    assert b"do not serve" not in response.data and b"root:" not in response.data


def test_publish_from_the_project_page_queues_the_work(client, auth, teams, run_jobs, app):
    from tests.conftest import TEXT_CONFIG

    requester = teams.requester()
    project_id = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Publish me", "label_config": TEXT_CONFIG, "pay_per_micro_task": 50,
        "estimated_seconds_per_micro_task": 60, "items_per_micro_task": 2}).get_json()["id"]
    auth.login(requester.person)
    refused = client.post(f"/projects/{project_id}/publish")
    assert refused.status_code == 400 and "upload items before publishing" in refused.get_data(as_text=True)
    client.post(f"/api/projects/{project_id}/import", headers=requester.headers, json=[{"text": "a"}, {"text": "b"}])
    assert client.post(f"/projects/{project_id}/publish").status_code == 302
    run_jobs()
    page = client.get(f"/projects/{project_id}").get_data(as_text=True)
    assert "status-live" in page and ">Pause<" in page and ">Publish<" not in page
    progress = client.get(f"/api/projects/{project_id}/progress").get_json()
    assert progress["micro_tasks"] == 1 and progress["queue"]["waiting"] == 1
    assert client.post(f"/projects/{project_id}/pause").status_code == 302
    assert client.get(f"/api/projects/{project_id}/progress").get_json()["queue"]["live"] is False
    page = client.get(f"/projects/{project_id}").get_data(as_text=True)
    assert ">Resume<" in page
