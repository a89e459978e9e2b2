"""A large image upload is shared out between background jobs, so that
several RQ workers store its images side by side, and it stays all or
nothing: one bad image, or one chunk that breaks, stores no item and leaves
no file behind."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from rq.registry import FinishedJobRegistry

from annotate import media
from annotate.extensions import db
from annotate.models import Item
from annotate.services import ingest
from tests.conftest import IMAGE_CONFIG


def jpeg(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40 + n, 30), (10 * n, 80, 160)).save(out, "JPEG")
    return out.getvalue()


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


@pytest.fixture
def image_project(client, teams, monkeypatch):
    monkeypatch.setattr(ingest, "IMAGE_CHUNK", 2)  # 7 images: four background jobs
    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers,
                           json={"title": "Photos", "label_config": IMAGE_CONFIG})
    return requester, response.get_json()["id"]


def import_zip(client, requester, project_id, content: bytes, run_jobs) -> dict:
    response = client.post(f"/api/projects/{project_id}/import", headers=requester.headers,
                           data={"file": [(io.BytesIO(content), "photos.zip")]}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    run_jobs()
    return client.get(response.headers["Location"], headers=requester.headers).get_json()


def stored_files(app) -> list[Path]:
    return [p for p in Path(app.config["MEDIA_ROOT"]).rglob("*") if p.is_file()]


def test_a_large_zip_is_stored_by_several_background_jobs_in_upload_order(client, app, image_project, run_jobs):
    requester, project_id = image_project
    status = import_zip(client, requester, project_id, zip_of([(f"p/{n}.jpg", jpeg(n)) for n in range(7)]), run_jobs)
    assert status["status"] == "finished", status
    assert (status["rows_done"], status["rows_total"], status["result"]["items"]) == (7, 7, 7)
    tasks = client.get(f"/api/tasks/?project={project_id}", headers=requester.headers).get_json()["tasks"]
    assert [(t["data"]["filename"], t["data"]["width"]) for t in tasks] == [(f"{n}.jpg", 40 + n) for n in range(7)]
    for task in tasks:
        response = client.get(task["data"]["thumbnail"], headers=requester.headers)
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert len(stored_files(app)) == 14  # each image and its thumbnail, nothing else
    with app.app_context():
        from annotate.queue import queue

        finished = FinishedJobRegistry(queue=queue()).get_job_ids()
    assert sum("-images-" in job_id for job_id in finished) == 4
    assert sum("-finish-" in job_id for job_id in finished) == 1


def test_a_bad_image_in_a_later_chunk_stores_nothing_and_removes_the_stored_images(client, app, image_project,
                                                                                    run_jobs):
    requester, project_id = image_project
    members = [(f"p/{n}.jpg", jpeg(n)) for n in range(7)]
    members[5] = ("p/5.jpg", b"not a jpeg at all")
    status = import_zip(client, requester, project_id, zip_of(members), run_jobs)
    assert status["status"] == "failed"
    assert status["errors"] == [{"file": "photos.zip", "member": "p/5.jpg",
                                 "message": "not an image we take: upload a JPEG, PNG or WebP file"}]
    assert status["error"] == "1 problem found; nothing was stored"
    with app.app_context():
        assert db.session.query(Item).count() == 0
    assert stored_files(app) == []


def test_a_chunk_that_breaks_fails_the_import_and_leaves_no_file(client, app, image_project, run_jobs, monkeypatch):
    requester, project_id = image_project
    real = media.store_image

    def disk_full_on_the_fourth(fp, filename, *args, **kwargs):
        if filename == "p/3.jpg":
            raise OSError("No space left on device")
        return real(fp, filename, *args, **kwargs)

    monkeypatch.setattr(media, "store_image", disk_full_on_the_fourth)
    status = import_zip(client, requester, project_id, zip_of([(f"p/{n}.jpg", jpeg(n)) for n in range(7)]), run_jobs)
    assert status["status"] == "failed"
    assert status["error"] == "the import stopped on an internal error (OSError); nothing was stored"
    with app.app_context():
        assert db.session.query(Item).count() == 0
    assert stored_files(app) == []
