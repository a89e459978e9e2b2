"""Uploading files: a background job checks every row, reports problems by
file and line, and stores all of an upload or nothing of it."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from annotate.extensions import db
from annotate.models import GoldAnswer, Item
from tests.conftest import IMAGE_CONFIG, TEXT_CONFIG, choice


@pytest.fixture
def project(client, teams):
    requester = teams.requester()

    def make(config=TEXT_CONFIG):
        response = client.post("/api/projects/", headers=requester.headers, json={"title": "P", "label_config": config})
        return response.get_json()["id"]

    make.requester = requester
    return make


def upload(client, requester, project_id, *files, gold=False):
    data = {"file": [(io.BytesIO(content if isinstance(content, bytes) else content.encode()), name)
                     for name, content in files]}
    return client.post(f"/api/projects/{project_id}/import{'?gold=1' if gold else ''}", headers=requester.headers,
                       data=data, content_type="multipart/form-data")


def finished(client, requester, response, run_jobs):
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["status"] == "queued"
    run_jobs()
    return client.get(response.headers["Location"], headers=requester.headers).get_json()


def task_texts(client, requester, project_id):
    tasks = client.get(f"/api/tasks/?project={project_id}&page_size=1000", headers=requester.headers).get_json()["tasks"]
    return [t["data"].get("text") for t in tasks]


def test_jsonl_csv_tsv_and_txt_uploads_become_items(client, project, run_jobs):
    project_id, requester = project(), project.requester
    status = finished(client, requester, upload(client, requester, project_id,
        ("a.jsonl", '{"text": "one"}\n\n{"data": {"text": "two"}}\n'),
        ("b.csv", 'text,source\nthree,web\n"four, with comma",app\n'),
        ("c.tsv", "text\tsource\nfive\tweb\n"),
        ("d.txt", "six\nseven\n")), run_jobs)
    assert status["status"] == "finished" and status["errors"] == []
    assert (status["rows_done"], status["rows_total"]) == (7, 7)
    assert task_texts(client, requester, project_id) == ["one", "two", "three", "four, with comma", "five", "six", "seven"]


@pytest.mark.parametrize("name,content,where,words", [
    ("bad.jsonl", '{"text": "ok"}\n{"text": \n', {"line": 2}, ""),
    ("bad.csv", "text,source\nok,web\ntoo,many,fields\n", {"line": 3}, "field"),
    ("bad.jsonl", '{"text": "ok"}\n{"body": "no text"}\n', {"line": 2}, 'has no "text"'),
    ("bad.jsonl", '{"text": "same"}\n{"text": "other"}\n{"text": "same"}\n', {"line": 3}, "duplicate of bad.jsonl, line 1"),
    ("bad.json", '[{"text": "ok"}, {"data": {"text": "x"}, "predictions": [{"result": [{"from_name": "nope", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]}]}]', {}, "nope"),
])
def test_a_bad_row_fails_the_whole_upload_with_its_line(client, project, run_jobs, app, name, content, where, words):
    project_id, requester = project(), project.requester
    status = finished(client, requester, upload(client, requester, project_id, ("good.jsonl", '{"text": "fine"}\n'),
                                                (name, content)), run_jobs)
    assert status["status"] == "failed"
    assert status["error"].endswith("nothing was stored")
    error = status["errors"][0]
    assert error["file"] == name and words in error["message"]
    for key, value in where.items():
        assert error[key] == value
    with app.app_context():
        assert db.session.query(Item).count() == 0


def test_an_item_already_in_the_project_is_a_duplicate(client, project, run_jobs):
    project_id, requester = project(), project.requester
    finished(client, requester, upload(client, requester, project_id, ("a.txt", "kept\n")), run_jobs)
    status = finished(client, requester, upload(client, requester, project_id, ("b.txt", "new\nkept\n")), run_jobs)
    assert status["status"] == "failed"
    assert status["errors"] == [{"file": "b.txt", "line": 2,
                                 "message": "duplicate: an item with the same data is already in the project"}]
    assert task_texts(client, requester, project_id) == ["kept"]


def test_a_file_type_we_do_not_take_is_refused_at_once(client, project, app):
    project_id, requester = project(), project.requester
    response = upload(client, requester, project_id, ("notes.docx", "binary"))
    assert response.status_code == 400
    assert 'notes.docx: extension ".docx" is not a format we take' in response.get_json()["detail"]
    assert list(Path(app.config["UPLOAD_ROOT"]).glob("import-*")) == []


def test_a_failure_while_writing_stores_nothing(client, project, run_jobs, app, monkeypatch):
    from annotate.services import ingest

    project_id, requester = project(), project.requester
    monkeypatch.setattr(ingest, "BATCH", 10)
    calls = {"n": 0}
    real = ingest._item_inserter

    def failing_on_third_batch(*args):
        insert = real(*args)

        def insert_or_fail(rows):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk full")
            insert(rows)
        return insert_or_fail

    monkeypatch.setattr(ingest, "_item_inserter", failing_on_third_batch)
    response = upload(client, requester, project_id, ("a.txt", "\n".join(f"row {i}" for i in range(50))))
    status = finished(client, requester, response, run_jobs)
    assert status["status"] == "failed" and "internal error" in status["error"]
    with app.app_context():
        assert db.session.query(Item).count() == 0


def test_gold_items_carry_their_answers(client, project, run_jobs, app):
    project_id, requester = project(), project.requester
    gold = [{"data": {"text": "I love it"}, "annotations": [{"result": choice("Positive"), "explanation": "love is positive"}]}]
    status = finished(client, requester, upload(client, requester, project_id, ("gold.json", json.dumps(gold)), gold=True), run_jobs)
    assert status["status"] == "finished", status
    task = client.get(f"/api/tasks/?project={project_id}", headers=requester.headers).get_json()["tasks"][0]
    assert task["is_gold"] is True
    assert task["gold_answer"] == {"result": choice("Positive"), "explanation": "love is positive"}
    counts = client.get(f"/api/projects/{project_id}/", headers=requester.headers).get_json()["counts"]
    assert (counts["items"], counts["gold_items"]) == (0, 1)


@pytest.mark.parametrize("row,words", [
    ({"data": {"text": "no answer"}}, "a gold item needs its answer"),
    ({"data": {"text": "x"}, "annotations": [{"result": choice("Positive")}], "predictions": [{"result": choice("Positive")}]},
     "gold items never carry predictions"),
    ({"data": {"text": "x"}, "annotations": [{"result": choice("Furious")}]}, "Furious"),
])
def test_bad_gold_is_refused(client, project, run_jobs, app, row, words):
    project_id, requester = project(), project.requester
    status = finished(client, requester, upload(client, requester, project_id, ("gold.json", json.dumps([row])), gold=True), run_jobs)
    assert status["status"] == "failed" and words in status["errors"][0]["message"]
    with app.app_context():
        assert db.session.query(GoldAnswer).count() == 0 and db.session.query(Item).count() == 0


def _jpeg(width=64, height=48, orientation=None) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_images_and_zips_become_items_pointing_at_stored_media(client, project, run_jobs, app):
    project_id, requester = project(IMAGE_CONFIG), project.requester
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photos/a.jpg", _jpeg(30, 20))
        zf.writestr("__MACOSX/._a.jpg", b"junk")
    status = finished(client, requester, upload(client, requester, project_id, ("rotated.jpg", _jpeg(64, 48, orientation=6)),
                                                ("batch.zip", archive.getvalue())), run_jobs)
    assert status["status"] == "finished", status
    tasks = client.get(f"/api/tasks/?project={project_id}", headers=requester.headers).get_json()["tasks"]
    assert [(t["data"]["filename"], t["data"]["width"], t["data"]["height"]) for t in tasks] == [
        ("rotated.jpg", 48, 64), ("a.jpg", 30, 20)]  # EXIF orientation applied
    media_root = Path(app.config["MEDIA_ROOT"])
    for task in tasks:
        assert task["data"]["image"].startswith("/media/")
        assert (media_root / task["data"]["image"].removeprefix("/media/")).is_file()
        assert (media_root / task["data"]["thumbnail"].removeprefix("/media/")).is_file()


def test_a_zip_that_climbs_out_of_its_root_is_refused_and_leaves_no_files(client, project, run_jobs, app):
    project_id, requester = project(IMAGE_CONFIG), project.requester
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.jpg", _jpeg())
        zf.writestr("../../evil.jpg", _jpeg(10, 10))
    status = finished(client, requester, upload(client, requester, project_id, ("first.jpg", _jpeg(12, 12)),
                                                ("evil.zip", archive.getvalue())), run_jobs)
    assert status["status"] == "failed"
    assert status["errors"][0]["member"] == "../../evil.jpg"
    with app.app_context():
        assert db.session.query(Item).count() == 0
    assert [p for p in Path(app.config["MEDIA_ROOT"]).rglob("*") if p.is_file()] == []


def test_an_image_that_is_not_one_is_refused(client, project, run_jobs):
    project_id, requester = project(IMAGE_CONFIG), project.requester
    status = finished(client, requester, upload(client, requester, project_id, ("fake.png", b"not a png at all")), run_jobs)
    assert status["status"] == "failed" and status["errors"][0]["file"] == "fake.png"


def test_image_urls_only_from_allowed_hosts(client, project, app):
    project_id, requester = project(IMAGE_CONFIG), project.requester
    response = client.post(f"/api/projects/{project_id}/import", headers=requester.headers,
                           json=[{"image": "http://169.254.169.254/latest/meta-data"}])
    assert response.status_code == 400
    assert "not an allowed media host" in response.get_json()["errors"][0]["message"]
    app.config["ALLOWED_MEDIA_HOSTS"] = ["images.example.org"]
    response = client.post(f"/api/projects/{project_id}/import", headers=requester.headers,
                           json=[{"image": "https://images.example.org/cat.jpg"}])
    assert response.status_code == 201
