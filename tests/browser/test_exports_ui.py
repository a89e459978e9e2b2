"""A requester in Chromium: opens the project's Exports page, starts an
export in every format the project offers, watches them finish, downloads
each file and finds their labels in it. An image project's COCO, YOLO and
VOC archives carry the stored images."""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.exports.conftest import annotators, image_project, labelled, projects  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser
WAIT_MS = 15_000  # the page refreshes itself every 3 s while an export runs


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav")).to_contain_text("API tokens")


def requester_email(client, headers) -> str:
    return client.get("/api/current-user/whoami", headers=headers).get_json()["email"]


def start_each(page, formats: list[str]) -> None:
    for name in formats:
        page.select_option("#format", name)
        page.click("button:has-text('Start export')")
        expect(page.locator("p.flash")).to_contain_text("started; this page shows its progress")


def download(page, row) -> tuple[str, bytes]:
    with page.expect_download() as info:
        row.locator("a:has-text('Download')").click()
    done = info.value
    return done.suggested_filename, Path(done.path()).read_bytes()


def test_a_requester_downloads_every_offered_format_from_the_exports_page(live_server, page, shoot, client,
                                                                          labelled, run_jobs):  # noqa: F811
    lab = labelled(items=3)
    sign_in(page, live_server, requester_email(client, lab.headers))
    page.goto(f"{live_server}/projects/{lab.project_id}")
    page.click("a:has-text('Exports')")
    expect(page.locator("h1")).to_have_text("Exports")
    offered = page.locator("#format option").evaluate_all("options => options.map(o => o.value)")
    assert offered == ["JSON", "JSON_MIN", "CSV", "TSV", "CONSENSUS_JSONL", "CONSENSUS_CSV"]
    expect(page.locator("text=Not offered for this project").first).to_be_visible()  # COCO and others, with why

    page.check("input[name=only_finished]")  # for the first export: both micro-tasks are finished
    start_each(page, offered)
    rows = page.locator("tr[data-export]")
    expect(rows).to_have_count(len(offered))
    expect(rows.locator("[data-field=status]", has_text="queued")).to_have_count(len(offered))
    shoot(page, "1-queued")

    run_jobs()  # the RQ worker's turn; the page refreshes itself
    expect(rows.locator("[data-field=status]", has_text="ready")).to_have_count(len(offered), timeout=WAIT_MS)
    shoot(page, "2-ready")

    files = {}
    for i in range(len(offered)):
        name, body = download(page, rows.nth(i))
        files[name] = body
    pid = lab.project_id
    names = {re.sub(r"-\d+\.", ".", n): body for n, body in files.items()}  # without the export ids
    texts = [f"item {i}" for i in range(3)]

    tasks = json.loads(names[f"project-{pid}-json.json"])
    assert [t["data"]["text"] for t in tasks] == texts
    assert all(len(t["annotations"]) == 2 and t["annotations"][0]["result"][0]["value"]["choices"] == ["Positive"]
               for t in tasks)
    records = json.loads(names[f"project-{pid}-json-min.json"])
    assert len(records) == 6 and {r["sentiment"] for r in records} == {"Positive"}
    table = list(csv.DictReader(io.StringIO(names[f"project-{pid}-csv.csv"].decode())))
    assert len(table) == 6 and sorted({r["text"] for r in table}) == texts and {r["sentiment"] for r in table} == {
        "Positive"}
    tabbed = list(csv.DictReader(io.StringIO(names[f"project-{pid}-tsv.tsv"].decode()), delimiter="\t"))
    assert [(r["text"], r["sentiment"]) for r in tabbed] == [(r["text"], r["sentiment"]) for r in table]
    consensus = [json.loads(line) for line in names[f"project-{pid}-consensus.jsonl"].decode().splitlines()]
    assert [c["data"]["text"] for c in consensus] == texts and {c["label"] for c in consensus} == {"Positive"}
    scored = list(csv.DictReader(io.StringIO(names[f"project-{pid}-consensus.csv"].decode())))
    assert [r["label"] for r in scored] == ["Positive"] * 3 and {r["n_annotators"] for r in scored} == {"2"}
    assert page.errors == []


def test_an_image_project_s_archives_carry_the_stored_images(live_server, page, shoot, client, image_project,
                                                               run_jobs):  # noqa: F811
    lab = image_project(n_images=2)
    sign_in(page, live_server, requester_email(client, lab.headers))
    page.goto(f"{live_server}/projects/{lab.project_id}/exports")
    start_each(page, ["COCO", "YOLO", "VOC"])
    run_jobs()
    rows = page.locator("tr[data-export]")
    expect(rows.locator("[data-field=status]", has_text="ready")).to_have_count(3, timeout=WAIT_MS)
    shoot(page, "archives-ready")
    archives = {}
    for i in range(3):
        name, body = download(page, rows.nth(i))
        archives[name.split("-")[2]] = zipfile.ZipFile(io.BytesIO(body))
    coco = json.loads(archives["coco"].read("result.json"))
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 4
    assert {c["name"] for c in coco["categories"]} == {"Car", "Person"}
    for archive in archives.values():
        images = [m for m in archive.namelist() if m.startswith("images/")]
        assert len(images) == 2 and all(archive.read(m).startswith(b"\x89PNG") for m in images)
    assert len([m for m in archives["yolo"].namelist() if m.startswith("labels/")]) == 2
    assert len([m for m in archives["voc"].namelist() if m.startswith("Annotations/")]) == 2
