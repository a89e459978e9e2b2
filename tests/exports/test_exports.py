"""Requesters export their labels: background exports with progress, the
filters, Label Studio JSON round trips, COCO / YOLO / VOC archives with our
stored media and nothing else, the consensus file, expiry."""
from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from annotate.extensions import db
from annotate.models import User
from annotate.services import export_reading, exports
from tests.conftest import TEXT_CONFIG, choice
from tests.exports.conftest import label_all

SECRET = b"SECRET-OUTSIDE-THE-MEDIA-ROOT"


def export_now(client, project_id, headers, fmt, **params):
    query = {"exportType": fmt, "download_all_tasks": "true", **params}
    response = client.get(f"/api/projects/{project_id}/export", headers=headers, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response


def start(client, project_id, headers, **body):
    response = client.post(f"/api/projects/{project_id}/exports/", headers=headers, json=body)
    assert response.status_code == 201, response.get_json()
    return response


def pseudonyms_of(tasks):
    return {a["completed_by"] for t in tasks for a in t["annotations"]}


def test_a_background_export_pages_through_items_records_progress_and_is_downloadable(
        labelled, client, run_jobs, app, monkeypatch):
    monkeypatch.setattr(export_reading, "PAGE", 2)  # several pages even for a small project
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 2)
    progress = []
    record = exports._progress
    monkeypatch.setattr(exports, "_progress", lambda job_id, done: (progress.append(done), record(job_id, done)))
    lab = labelled(items=6)
    created = start(client, lab.project_id, lab.headers, format="JSON").get_json()
    assert created["status"] == "created" and created["download_url"] is None
    run_jobs()
    status = client.get(created["url"], headers=lab.headers).get_json()
    assert status["status"] == "completed" and (status["items_done"], status["items_total"]) == (6, 6)
    assert progress == [2, 4, 6]
    assert status["result"]["annotations"] == 12 and status["expires_at"] > status["finished_at"]
    download = client.get(status["download_url"], headers=lab.headers)
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert f"project-{lab.project_id}-json-{created['id']}.json" in download.headers["Content-Disposition"]
    tasks = json.loads(download.get_data())
    assert [t["data"]["text"] for t in tasks] == [f"item {i}" for i in range(6)]
    assert all(len(t["annotations"]) == 2 and t["annotations"][0]["result"] == choice("Positive") for t in tasks)
    # Two annotators, two pseudonyms, none of them a user id; another export gives others.
    first = pseudonyms_of(tasks)
    ids = {str(p.id) for p in lab.people}
    assert len(first) == 2 and not first & ids and all(len(p) == 16 for p in first)
    again = json.loads(export_now(client, lab.project_id, lab.headers, "JSON").get_data())
    assert len(pseudonyms_of(again)) == 2 and not pseudonyms_of(again) & first
    listed = client.get(f"/api/projects/{lab.project_id}/exports/", headers=lab.headers).get_json()
    assert [e["id"] for e in listed] == [created["id"]]


def test_label_studio_json_imported_into_a_new_project_reproduces_items_and_annotations(labelled, client):
    lab = labelled(items=5)
    exported = json.loads(export_now(client, lab.project_id, lab.headers, "JSON").get_data())
    copy = client.post("/api/projects/", headers=lab.headers,
                       json={"title": "Copy", "label_config": TEXT_CONFIG}).get_json()["id"]
    imported = client.post(f"/api/projects/{copy}/import", headers=lab.headers, json=exported)
    assert imported.status_code == 201, imported.get_json()
    assert imported.get_json()["task_count"] == 5 and imported.get_json()["annotation_count"] == 10
    again = json.loads(export_now(client, copy, lab.headers, "JSON").get_data())

    def content(tasks):
        return [(t["data"], [(a["result"], a["completed_by"], a["lead_time"]) for a in t["annotations"]])
                for t in tasks]

    assert content(again) == content(exported)
    assert all(a["imported"] for t in again for a in t["annotations"])


def test_only_approved_work(labelled, client, app, run_jobs, projects, annotators):
    project_id = projects.live(items=4, overlap=3, per_task=2)
    headers = projects.requester.headers
    client.patch(f"/api/projects/{project_id}/", headers=headers, json={"approve_quality_threshold": 0.5})
    agree_a, agree_b, contrary = annotators(3)
    label_all([agree_a, agree_b], project_id)
    label_all([contrary], project_id, lambda person, item: "Negative")
    run_jobs()
    everything = json.loads(export_now(client, project_id, headers, "JSON").get_data())
    approved = json.loads(export_now(client, project_id, headers, "JSON", only_approved="true").get_data())
    assert all(len(t["annotations"]) == 3 for t in everything)
    assert {a["decision"] for t in everything for a in t["annotations"]} == {"approved", "pending"}
    assert all(len(t["annotations"]) == 2 for t in approved)
    assert all(a["decision"] == "approved" and a["result"] == choice("Positive")
               for t in approved for a in t["annotations"])


def test_only_finished_micro_tasks(client, projects, annotators, run_jobs):
    project_id = projects.live(items=4, overlap=2, per_task=2)
    headers = projects.requester.headers
    everyone, once = annotators(2)
    label_all([everyone], project_id)
    work = once.next(project_id).get_json()
    assert once.submit(work).status_code == 200  # one micro-task gets its second annotator, the other does not
    run_jobs()
    every = json.loads(export_now(client, project_id, headers, "JSON").get_data())
    finished = json.loads(export_now(client, project_id, headers, "JSON", only_finished="true").get_data())
    assert len(every) == 4 and sorted(len(t["annotations"]) for t in every) == [1, 1, 2, 2]
    assert sorted(t["id"] for t in finished) == sorted(item["id"] for item in work["items"])
    assert all(len(t["annotations"]) == 2 for t in finished)


def test_consensus_file_and_confidence_filter(labelled, client):
    seen = []

    def label_of(person, item):  # the second annotator disagrees on "item 1"
        seen.append(person) if person not in seen else None
        return "Negative" if item["data"]["text"] == "item 1" and person is not seen[0] else "Positive"

    lab = labelled(items=4, label_of=label_of)
    lines = export_now(client, lab.project_id, lab.headers, "CONSENSUS_JSONL").get_data(as_text=True).splitlines()
    rows = {json.loads(line)["data"]["text"]: json.loads(line) for line in lines}
    assert set(rows) == {f"item {i}" for i in range(4)}
    assert all(r["n_annotators"] == 2 and r["is_gold"] is False for r in rows.values())
    confident = {t for t, r in rows.items() if r["confidence"] >= 0.9}
    assert rows["item 0"]["label"] == "Positive" and rows["item 0"]["confidence"] == 1.0
    assert "item 1" not in confident and len(confident) == 3
    filtered = json.loads(export_now(client, lab.project_id, lab.headers, "JSON", min_confidence="0.9").get_data())
    assert {t["data"]["text"] for t in filtered} == confident
    table = client.get(f"/api/projects/{lab.project_id}/consensus?format=csv&min_confidence=0.9", headers=lab.headers)
    read = list(csv.DictReader(io.StringIO(table.get_data(as_text=True))))
    assert {json.loads(r["data"])["text"] for r in read} == confident
    assert list(read[0]) == ["item_id", "data", "label", "consensus", "confidence", "agreement", "n_annotators",
                             "is_gold", "method"]
    assert client.get(f"/api/projects/{lab.project_id}/consensus?format=xml", headers=lab.headers).status_code == 400
    bad = client.get(f"/api/projects/{lab.project_id}/export?exportType=JSON&min_confidence=2", headers=lab.headers)
    assert bad.status_code == 400 and "min_confidence" in bad.get_json()["detail"]


def test_gold_items_are_in_the_consensus_file_with_their_known_answer(client, projects, annotators, run_jobs):
    project_id = projects.live(items=4, overlap=2, per_task=2, gold=2, gold_share=0.5)
    label_all(annotators(2), project_id)
    run_jobs()
    lines = export_now(client, project_id, projects.requester.headers, "CONSENSUS_JSONL").get_data(as_text=True)
    gold = [json.loads(line) for line in lines.splitlines() if json.loads(line)["is_gold"]]
    assert len(gold) == 2 and all(g["method"] == "gold" and g["label"] == "Positive" for g in gold)


def test_tsv_and_csv_and_json_min_have_a_row_per_annotation(labelled, client):
    lab = labelled(items=3)
    tsv = export_now(client, lab.project_id, lab.headers, "TSV")
    assert tsv.mimetype == "text/tab-separated-values"
    rows = list(csv.DictReader(io.StringIO(tsv.get_data(as_text=True)), delimiter="\t"))
    assert len(rows) == 6 and {r["sentiment"] for r in rows} == {"Positive"}
    records = json.loads(export_now(client, lab.project_id, lab.headers, "JSON_MIN").get_data())
    assert len(records) == 6 and all(r["sentiment"] == "Positive" and len(r["annotator"]) == 16 for r in records)


def _archive(response) -> zipfile.ZipFile:
    assert response.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def test_coco_is_consistent_and_carries_our_images(image_project, client):
    lab = image_project(n_images=3)
    archive = _archive(export_now(client, lab.project_id, lab.headers, "COCO"))
    coco = json.loads(archive.read("result.json"))
    images = {image["id"]: image for image in coco["images"]}
    categories = {c["id"] for c in coco["categories"]}
    assert len(images) == 3 and {c["name"] for c in coco["categories"]} >= {"Car", "Person"}
    assert len(coco["annotations"]) == 6
    for annotation in coco["annotations"]:
        image = images[annotation["image_id"]]
        assert annotation["category_id"] in categories
        x, y, w, h = annotation["bbox"]
        assert 0 <= x and 0 <= y and w > 0 and h > 0
        assert x + w <= image["width"] + 1e-6 and y + h <= image["height"] + 1e-6
    members = set(archive.namelist())
    for image in images.values():
        assert image["file_name"].startswith("images/") and image["file_name"] in members
    stored = [m for m in members if m.startswith("images/")]
    assert len(stored) == 3 and all(archive.read(m).startswith(b"\x89PNG") for m in stored)
    without = _archive(export_now(client, lab.project_id, lab.headers, "COCO", download_resources="false"))
    assert not [m for m in without.namelist() if m.startswith("images/")]


def test_yolo_lines_are_normalised_and_images_are_in_the_archive(image_project, client):
    lab = image_project(n_images=3)
    archive = _archive(export_now(client, lab.project_id, lab.headers, "YOLO"))
    classes = archive.read("classes.txt").decode().split()
    assert set(classes) >= {"Car", "Person"}
    labels = [m for m in archive.namelist() if m.startswith("labels/")]
    assert len(labels) == 3
    for member in labels:
        lines = archive.read(member).decode().splitlines()
        assert len(lines) == 2
        for line in lines:
            cls, *numbers = line.split()
            assert 0 <= int(cls) < len(classes) and len(numbers) == 4
            assert all(0.0 <= float(n) <= 1.0 for n in numbers)
        assert f"images/{Path(member).stem}.png" in archive.namelist()


def test_voc_has_an_xml_file_of_boxes_per_image(image_project, client, run_jobs):
    lab = image_project(n_images=2)
    created = start(client, lab.project_id, lab.headers, format="VOC").get_json()
    run_jobs()
    status = client.get(created["url"], headers=lab.headers).get_json()
    assert status["status"] == "completed" and status["result"]["images"] == 2
    archive = _archive(client.get(status["download_url"], headers=lab.headers))
    xmls = [m for m in archive.namelist() if m.startswith("Annotations/")]
    assert len(xmls) == 2
    for member in xmls:
        root = ElementTree.fromstring(archive.read(member))
        width = int(root.find("size/width").text)
        boxes = root.findall("object/bndbox")
        assert len(boxes) == 2 and all(0 <= int(b.find("xmin").text) < int(b.find("xmax").text) <= width
                                       for b in boxes)


def test_a_data_field_naming_a_path_outside_the_media_root_is_never_followed(image_project, client, app):
    media_root = Path(app.config["MEDIA_ROOT"])
    media_root.mkdir(parents=True, exist_ok=True)
    secret = media_root.parent / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + SECRET)
    os.symlink(secret, media_root / "planted.png")
    outside = [{"data": {"image": value, "width": 64, "height": 48}}
               for value in ("/media/../secret.png", "/media/planted.png", f"/media/{secret}", "/media/%2e%2e/secret.png")]
    lab = image_project(n_images=2, extra_tasks=outside)
    for fmt in ("COCO", "YOLO", "VOC"):
        archive = _archive(export_now(client, lab.project_id, lab.headers, fmt))
        assert len([m for m in archive.namelist() if m.startswith("images/")]) == 2
        assert not any(SECRET in archive.read(m) for m in archive.namelist()), fmt
    coco = json.loads(_archive(export_now(client, lab.project_id, lab.headers, "COCO")).read("result.json"))
    names = {image["file_name"] for image in coco["images"]}
    assert "/media/../secret.png" in names and "/media/planted.png" in names  # named as the item says, not fetched


def test_a_format_the_config_cannot_hold_is_refused_with_the_reason(labelled, client):
    lab = labelled(items=2)
    response = client.get(f"/api/projects/{lab.project_id}/export?exportType=COCO", headers=lab.headers)
    assert response.status_code == 400 and "needs an <Image>" in response.get_json()["detail"]
    response = client.post(f"/api/projects/{lab.project_id}/exports/", headers=lab.headers, json={"format": "EXCEL"})
    assert response.status_code == 400 and "unknown export format" in response.get_json()["detail"]
    formats = client.get(f"/api/projects/{lab.project_id}/export/formats", headers=lab.headers).get_json()
    offered = {f["name"]: f for f in formats}
    assert not offered["JSON"]["disabled"] and offered["YOLO"]["disabled"] and offered["YOLO"]["reason"]


def test_an_expired_export_is_removed_and_answers_gone(labelled, client, run_jobs, app):
    import datetime as dt

    lab = labelled(items=2)
    created = start(client, lab.project_id, lab.headers, format="CSV").get_json()
    run_jobs()
    status = client.get(created["url"], headers=lab.headers).get_json()
    assert client.get(status["download_url"], headers=lab.headers).status_code == 200
    with app.app_context():
        assert exports.expire_exports() == 0
        files = list(Path(app.config["EXPORT_ROOT"]).rglob("export-*"))
        assert len(files) == 1
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=exports.ttl_seconds() + 1)
        assert exports.expire_exports(now=later) == 1
        assert not files[0].exists()
    gone = client.get(status["download_url"], headers=lab.headers)
    assert gone.status_code == 410 and "expired" in gone.get_json()["detail"]
    expired = client.get(created["url"], headers=lab.headers).get_json()
    assert expired["expired"] and not expired["downloadable"] and expired["download_url"] is None


def test_a_failed_export_leaves_no_file_and_a_retry_finishes_it(labelled, client, run_jobs, app, monkeypatch):
    from exports import labelstudio

    lab = labelled(items=2)

    def broken(tasks, out):
        next(iter(tasks))
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(labelstudio, "write_json", broken)
    created = start(client, lab.project_id, lab.headers, format="JSON").get_json()
    run_jobs()
    status = client.get(created["url"], headers=lab.headers).get_json()
    assert status["status"] == "failed" and "internal error" in status["error"]
    assert not [p for p in Path(app.config["EXPORT_ROOT"]).rglob("*") if p.is_file()]
    assert client.get(f"{created['url'].rstrip('/')}/download", headers=lab.headers).status_code == 404
    monkeypatch.undo()
    with app.app_context():
        exports.run_export(created["id"])  # what RQ's retry runs
    assert client.get(created["url"], headers=lab.headers).get_json()["status"] == "completed"


def test_exports_are_for_the_project_s_team_and_operators(labelled, client, teams, people, auth, run_jobs, app):
    lab = labelled(items=2)
    created = start(client, lab.project_id, lab.headers, format="JSON").get_json()
    run_jobs()
    stranger = teams.requester("Speech")
    base = f"/api/projects/{lab.project_id}"
    paths = [f"{base}/export?exportType=JSON", f"{base}/export/formats", f"{base}/consensus",
             f"{base}/exports/", f"{base}/exports/{created['id']}", f"{base}/exports/{created['id']}/download",
             f"/projects/{lab.project_id}/exports", f"/projects/{lab.project_id}/exports/{created['id']}/download"]
    for path in paths:
        assert client.get(path, headers=stranger.headers).status_code == 404, path
    assert client.post(f"{base}/exports/", headers=stranger.headers, json={"format": "JSON"}).status_code == 404
    convert = f"{base}/exports/{created['id']}/convert"
    assert client.post(convert, headers=stranger.headers, json={"export_type": "CSV"}).status_code == 404
    assert client.delete(f"{base}/exports/{created['id']}", headers=stranger.headers).status_code == 404
    annotator = lab.people[0]
    for path in paths:
        assert annotator.client.get(path, headers=annotator.headers).status_code == 403, path
    assert annotator.client.post(convert, headers=annotator.headers, json={"export_type": "CSV"}).status_code == 403
    assert annotator.client.delete(f"{base}/exports/{created['id']}", headers=annotator.headers).status_code == 403
    # Nothing the others tried changed the export.
    kept = client.get(f"{base}/exports/{created['id']}", headers=lab.headers).get_json()
    assert kept["status"] == "completed" and kept["converted_formats"] == []
    assert client.get(paths[0]).status_code == 401
    with app.app_context():
        operator_id = db.session.query(User.id).filter(User.is_operator.is_(True)).scalar()
        operator_email = db.session.get(User, operator_id).email
    from tests.conftest import Person

    auth.login(Person(operator_id, operator_email))
    assert client.get(paths[0]).status_code == 200


NER_CONFIG = """<View><Labels name="label" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
<Text name="text" value="$text"/></View>"""


def test_conll_2003_tags_the_consensus_entities(client, teams, annotators, run_jobs):
    requester = teams.requester()
    project = client.post("/api/projects/", headers=requester.headers, json={
        "title": "People", "label_config": NER_CONFIG, "overlap": 2, "items_per_micro_task": 2,
        "pay_per_micro_task": 40, "estimated_seconds_per_micro_task": 30}).get_json()["id"]
    texts = ["Ada Lovelace lived in London", "Alan Turing worked in Manchester"]
    assert client.post(f"/api/projects/{project}/import", headers=requester.headers,
                       json=[{"text": t} for t in texts]).status_code == 201
    assert client.post(f"/api/projects/{project}/publish", headers=requester.headers).status_code == 200
    run_jobs()

    def spans(person, item):
        text = item["data"]["text"]
        name = " ".join(text.split()[:2])
        place = text.split()[-1]
        return [{"from_name": "label", "to_name": "text", "type": "labels",
                 "value": {"start": 0, "end": len(name), "text": name, "labels": ["PER"]}},
                {"from_name": "label", "to_name": "text", "type": "labels",
                 "value": {"start": len(text) - len(place), "end": len(text), "text": place, "labels": ["LOC"]}}]

    label_all(annotators(2), project, result_of=spans)
    run_jobs()
    conll = export_now(client, project, requester.headers, "CONLL2003").get_data(as_text=True)
    lines = conll.splitlines()
    assert lines[0] == "-DOCSTART- -X- O"
    assert "Ada -X- _ B-PER" in lines and "Lovelace -X- _ I-PER" in lines and "London -X- _ B-LOC" in lines
    assert "lived -X- _ O" in lines and "Manchester -X- _ B-LOC" in lines


def test_label_studio_json_carries_predictions(client, projects, annotators, run_jobs):
    project_id = projects.live(items=2, overlap=1, per_task=2, predictions=True)
    label_all(annotators(1), project_id)
    run_jobs()
    tasks = json.loads(export_now(client, project_id, projects.requester.headers, "JSON").get_data())
    assert all(t["predictions"][0]["result"] == choice("Positive") and t["predictions"][0]["model_version"] == "m1"
               for t in tasks)
    assert all(t["total_predictions"] == 1 and t["total_annotations"] == 1 for t in tasks)


def test_dataset_formats_take_the_consensus_else_the_latest_annotation(image_project, client, app):
    from sqlalchemy import delete, select

    from annotate.models import Item, ItemScore

    lab = image_project(n_images=2)
    with app.app_context():
        first, second = db.session.scalars(select(Item.id).where(Item.project_id == lab.project_id)
                                           .order_by(Item.id)).all()
        db.session.execute(delete(ItemScore).where(ItemScore.item_id == second))  # not scored yet
        db.session.commit()
    coco = json.loads(_archive(export_now(client, lab.project_id, lab.headers, "COCO")).read("result.json"))
    images = {image["id"]: image["width"] for image in coco["images"]}
    car_x = [round(a["bbox"][0] / images[a["image_id"]] * 100, 6) for a in coco["annotations"]
             if a["category_id"] == next(c["id"] for c in coco["categories"] if c["name"] == "Car")]
    # The scored image: the fused box of x 11 and 11.5; the other: one annotator's own box.
    assert car_x[0] == 11.25 and car_x[1] in (11.0, 11.5)


def test_an_export_reads_sqlite_with_a_small_page_cache_and_gives_the_connection_its_own_back(app):
    with app.app_context():
        session = db.session
        if session.get_bind().dialect.name != "sqlite":
            return  # PostgreSQL's buffers are the server's
        small = -export_reading.EXPORT_PAGE_CACHE_KIB
        own = session.connection().exec_driver_sql("PRAGMA cache_size").scalar()
        assert own != small
        with export_reading.read_connection() as connection:  # the export's own, for its one long read
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == small
            raw = connection.connection.dbapi_connection
        assert raw.execute("PRAGMA cache_size").fetchone()[0] == own
        cache = export_reading.PageCache("sqlite")  # and the session's, for look-ups a page at a time
        cache.shrink(session.connection())
        assert session.connection().exec_driver_sql("PRAGMA cache_size").scalar() == small
        session.commit()  # a progress update ends the read in between: the next page shrinks the next connection
        cache.shrink(session.connection())
        assert session.connection().exec_driver_sql("PRAGMA cache_size").scalar() == small
        cache.restore()
        assert session.connection().exec_driver_sql("PRAGMA cache_size").scalar() == own
        session.rollback()


def test_an_export_reads_postgresql_without_parallel_workers_and_leaves_the_pool_as_it_was(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return  # SQLite has no parallel workers
        with db.engine.connect() as connection:
            default = connection.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar()
        with export_reading.read_connection() as connection:
            assert connection.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() == "0"
            raw = connection.connection.dbapi_connection
        with db.engine.connect() as connection:  # the pool hands the same connection out again
            assert connection.connection.dbapi_connection is raw
            assert connection.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() == default != "0"
