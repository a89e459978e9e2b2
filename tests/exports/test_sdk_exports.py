"""An ML team drives our export snapshots with label-studio-sdk 2.1.2, as
against Label Studio: `projects.exports.create / list / get / convert /
download / delete`, over HTTP to the app served on a real port."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from tests.browser.conftest import live_server  # noqa: F401  (fixture: the app on 127.0.0.1)
from tests.exports.conftest import annotators, image_project, labelled, projects  # noqa: F401  (fixtures)


def client_for(base_url: str, headers: dict) -> LabelStudio:
    return LabelStudio(base_url=base_url, api_key=headers["Authorization"].split()[1])


def download(ls: LabelStudio, project_id: int, export_id: int, export_type: str | None = None) -> bytes:
    return b"".join(ls.projects.exports.download(id=project_id, export_pk=export_id, export_type=export_type))


def test_a_snapshot_is_created_listed_polled_converted_downloaded_and_deleted(
        live_server, labelled, run_jobs, projects, app):  # noqa: F811
    lab = labelled(items=4)
    ls = client_for(live_server, lab.headers)

    snapshot = ls.projects.exports.create(id=lab.project_id, title="Weekly drop",
                                          task_filter_options={"only_with_annotations": True},
                                          serialization_options={"predictions": {"only_id": False}})
    assert snapshot.id and snapshot.title == "Weekly drop" and snapshot.status == "created"
    assert snapshot.created_by.email == projects.requester.person.email and snapshot.converted_formats == []
    assert [e.id for e in ls.projects.exports.list(id=lab.project_id)] == [snapshot.id]

    run_jobs()
    done = ls.projects.exports.get(id=lab.project_id, export_pk=snapshot.id)
    assert done.status == "completed" and done.finished_at is not None
    assert done.counters == {"task_number": 4, "annotation_number": 8}
    body = download(ls, lab.project_id, snapshot.id)
    assert done.md5 == hashlib.md5(body).hexdigest()
    tasks = json.loads(body)  # Label Studio JSON: every item with both annotations
    assert [t["data"]["text"] for t in tasks] == [f"item {i}" for i in range(4)]
    assert all(len(t["annotations"]) == 2 and t["annotations"][0]["result"][0]["value"]["choices"] == ["Positive"]
               for t in tasks)

    converted = ls.projects.exports.convert(id=lab.project_id, export_pk=snapshot.id, export_type="CSV")
    assert converted.export_type == "CSV" and converted.converted_format
    with pytest.raises(ApiError) as again:
        ls.projects.exports.convert(id=lab.project_id, export_pk=snapshot.id, export_type="CSV")
    assert again.value.status_code == 400 and "Conversion to CSV already started" in again.value.body["detail"]
    with pytest.raises(ApiError) as early:  # not written yet
        download(ls, lab.project_id, snapshot.id, "CSV")
    assert early.value.status_code == 404 and "nothing to download yet" in early.value.body["detail"]

    run_jobs()
    polled = ls.projects.exports.get(id=lab.project_id, export_pk=snapshot.id)
    assert [(c.id, c.export_type, c.status) for c in polled.converted_formats] == [
        (converted.converted_format, "CSV", "completed")]
    rows = list(csv.DictReader(io.StringIO(download(ls, lab.project_id, snapshot.id, "CSV").decode())))
    assert len(rows) == 8 and {r["sentiment"] for r in rows} == {"Positive"}
    assert sorted({r["text"] for r in rows}) == [f"item {i}" for i in range(4)]
    assert json.loads(download(ls, lab.project_id, snapshot.id, "JSON")) == tasks  # the snapshot itself
    with pytest.raises(ApiError) as missing:
        download(ls, lab.project_id, snapshot.id, "TSV")
    assert missing.value.status_code == 404 and "TSV format is not converted yet" in missing.value.body["detail"]
    # Conversions are not snapshots of their own: the list still has one.
    assert [e.id for e in ls.projects.exports.list(id=lab.project_id)] == [snapshot.id]

    files = [p for p in Path(app.config["EXPORT_ROOT"]).rglob("export-*") if p.is_file()]
    assert len(files) == 2
    ls.projects.exports.delete(id=lab.project_id, export_pk=snapshot.id)
    with pytest.raises(ApiError) as gone:
        ls.projects.exports.get(id=lab.project_id, export_pk=snapshot.id)
    assert gone.value.status_code == 404
    with pytest.raises(ApiError) as gone:
        ls.projects.exports.get(id=lab.project_id, export_pk=converted.converted_format)
    assert gone.value.status_code == 404
    assert ls.projects.exports.list(id=lab.project_id) == [] and not any(p.exists() for p in files)


def test_label_studio_filter_options_are_honoured_or_refused_in_words(live_server, client, projects, annotators,
                                                                      run_jobs):  # noqa: F811
    from tests.exports.conftest import label_all

    project_id = projects.live(items=6, overlap=2, per_task=2)
    first, second = annotators(2)
    label_all([first], project_id)  # every micro-task has one of its two annotations: none is finished
    work = second.next(project_id).get_json()  # one micro-task gets its second
    second.submit(work)
    run_jobs()
    ls = client_for(live_server, projects.requester.headers)

    finished = ls.projects.exports.create(id=project_id, task_filter_options={"finished": "only"})
    everything = ls.projects.exports.create(id=project_id)
    run_jobs()
    assert ls.projects.exports.get(id=project_id, export_pk=finished.id).counters["task_number"] == 2
    finished_tasks = json.loads(download(ls, project_id, finished.id))
    assert sorted(t["id"] for t in finished_tasks) == sorted(item["id"] for item in work["items"])
    assert ls.projects.exports.get(id=project_id, export_pk=everything.id).counters["task_number"] == 6

    refusals = [({"task_filter_options": {"view": 3}}, "Data Manager tab"),
                ({"task_filter_options": {"annotated": "exclude"}}, "annotated=exclude is not offered"),
                ({"task_filter_options": {"finished": "sometimes"}}, "must be only, exclude or null"),
                ({"annotation_filter_options": {"usual": False, "ground_truth": True}}, "every annotation here")]
    for options, words in refusals:
        with pytest.raises(ApiError) as refused:
            ls.projects.exports.create(id=project_id, **options)
        assert refused.value.status_code == 400 and words in refused.value.body["detail"], options
    with pytest.raises(ApiError) as unknown:
        ls.projects.exports.convert(id=project_id, export_pk=everything.id, export_type="EXCEL")
    assert unknown.value.status_code == 400 and "unknown export format 'EXCEL'" in unknown.value.body["detail"]
    with pytest.raises(ApiError) as not_offered:
        ls.projects.exports.convert(id=project_id, export_pk=everything.id, export_type="COCO")
    assert not_offered.value.status_code == 400 and "needs an <Image>" in not_offered.value.body["detail"]
    assert len(ls.projects.exports.list(id=project_id)) == 2  # nothing was recorded for the refusals


def test_an_image_snapshot_converts_to_coco_yolo_and_voc_with_our_images(live_server, image_project,
                                                                          run_jobs):  # noqa: F811
    lab = image_project(n_images=2)
    ls = client_for(live_server, lab.headers)
    snapshot = ls.projects.exports.create(id=lab.project_id,
                                          converted_formats=[{"export_type": "COCO"}, {"export_type": "YOLO"}])
    ls.projects.exports.convert(id=lab.project_id, export_pk=snapshot.id, export_type="VOC")
    run_jobs()
    done = ls.projects.exports.get(id=lab.project_id, export_pk=snapshot.id)
    assert {c.export_type: c.status for c in done.converted_formats} == {
        "COCO": "completed", "YOLO": "completed", "VOC": "completed"}

    coco_zip = zipfile.ZipFile(io.BytesIO(download(ls, lab.project_id, snapshot.id, "COCO")))
    coco = json.loads(coco_zip.read("result.json"))
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 4
    assert all(image["file_name"] in coco_zip.namelist() for image in coco["images"])
    yolo = zipfile.ZipFile(io.BytesIO(download(ls, lab.project_id, snapshot.id, "YOLO")))
    assert sorted(yolo.read("classes.txt").decode().split()) == ["Car", "Person"]
    assert len([m for m in yolo.namelist() if m.startswith("labels/")]) == 2
    voc = zipfile.ZipFile(io.BytesIO(download(ls, lab.project_id, snapshot.id, "VOC")))
    assert len([m for m in voc.namelist() if m.startswith("Annotations/")]) == 2
    assert len([m for m in voc.namelist() if m.startswith("images/")]) == 2
