"""ML teams download their labels with label-studio-sdk, as from Label Studio,
and from the project's pages."""
from __future__ import annotations

import json
import re

from tests.conftest import Person
from tests.exports.conftest import annotators, image_project, labelled, projects  # noqa: F401  (fixtures)
from tests.web.test_projects_api import sdk


def test_label_studio_sdk_downloads_exports_from_us(app, labelled):  # noqa: F811
    lab = labelled(items=4)
    token = lab.headers["Authorization"].split()[1]
    ls = sdk(app, token)
    tasks = json.loads(b"".join(ls.projects.exports.download_sync(lab.project_id, export_type="JSON",
                                                                   download_all_tasks=True)))
    assert len(tasks) == 4 and all(len(t["annotations"]) == 2 for t in tasks)
    chosen = [tasks[0]["id"], tasks[2]["id"]]
    some = json.loads(b"".join(ls.projects.exports.download_sync(lab.project_id, export_type="JSON_MIN",
                                                                  ids=[str(i) for i in chosen])))
    assert sorted({r["id"] for r in some}) == chosen and all(r["sentiment"] == "Positive" for r in some)
    table = b"".join(ls.projects.exports.download_sync(lab.project_id, export_type="CSV")).decode()
    assert table.splitlines()[0].startswith('"annotation_id","annotator"') and len(table.splitlines()) == 9
    formats = ls.projects.exports.list_formats(lab.project_id)
    assert {f["name"] for f in formats if not f["disabled"]} >= {"JSON", "JSON_MIN", "CSV", "TSV"}


def test_label_studio_query_spellings(client, labelled):  # noqa: F811
    lab = labelled(items=3)
    base = f"/api/projects/{lab.project_id}/export"
    ids = [t["id"] for t in json.loads(client.get(f"{base}?exportType=JSON&download_all_tasks=true",
                                                  headers=lab.headers).get_data())]
    picked = client.get(f"{base}?exportType=JSON&ids[]={ids[0]}&ids[]={ids[2]}", headers=lab.headers)
    assert [t["id"] for t in json.loads(picked.get_data())] == [ids[0], ids[2]]
    default = client.get(base, headers=lab.headers)  # JSON, annotated items only
    assert default.status_code == 200 and len(json.loads(default.get_data())) == 3


def test_coco_through_the_sdk(app, image_project):  # noqa: F811
    import io
    import zipfile

    lab = image_project(n_images=2)
    ls = sdk(app, lab.headers["Authorization"].split()[1])
    data = b"".join(ls.projects.exports.download_sync(lab.project_id, export_type="COCO", download_all_tasks=True))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert len(json.loads(archive.read("result.json"))["images"]) == 2


def test_a_requester_exports_from_the_project_page(client, auth, labelled, run_jobs):  # noqa: F811
    lab = labelled(items=3)
    # The project's requester signs in to the pages with their password.
    email = client.get("/api/current-user/whoami", headers=lab.headers).get_json()["email"]
    auth.login(Person(0, email))
    detail = client.get(f"/projects/{lab.project_id}").get_data(as_text=True)
    assert f'href="/projects/{lab.project_id}/exports"' in detail
    page = client.get(f"/projects/{lab.project_id}/exports").get_data(as_text=True)
    assert "Not offered for this project" in page and "needs an &lt;Image&gt;" in page
    assert '<option value="JSON_MIN"' in page and '<option value="COCO"' not in page
    bad = client.post(f"/projects/{lab.project_id}/exports", data={"format": "JSON", "min_confidence": "high"})
    assert bad.status_code == 400 and "min_confidence must be a number" in bad.get_data(as_text=True)
    started = client.post(f"/projects/{lab.project_id}/exports",
                          data={"format": "CSV", "only_finished": "on", "with_images": "on"})
    assert started.status_code == 302
    running = client.get(f"/projects/{lab.project_id}/exports").get_data(as_text=True)
    assert 'http-equiv="refresh"' in running and "only finished micro-tasks" in running
    run_jobs()
    done = client.get(f"/projects/{lab.project_id}/exports").get_data(as_text=True)
    link = re.search(r'href="(/projects/\d+/exports/\d+/download)"', done).group(1)
    assert 'http-equiv="refresh"' not in done
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert len(download.get_data(as_text=True).splitlines()) == 7
