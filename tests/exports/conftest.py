"""Projects with finished, scored and paid work, built the way users build
them: requesters through the API, annotators through the work API, and the
background jobs run in-process."""
from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from PIL import Image

from tests.conftest import IMAGE_CONFIG, choice
from tests.work.conftest import Annotator, annotators, projects  # noqa: F401  (fixtures used here)


def label_all(people: list[Annotator], project_id: int, label_of=lambda person, item: "Positive",
              result_of=None) -> int:
    """Each annotator takes and submits micro-tasks of the project until none is left; returns submissions."""
    submitted = 0
    for person in people:
        while True:
            response = person.next(project_id)
            if response.status_code == 204:
                break
            work = response.get_json()
            annotations = [{"item_id": item["id"], "seconds": 4.0,
                            "result": result_of(person, item) if result_of else choice(label_of(person, item))}
                           for item in work["items"]]
            answer = person.client.post(f"/api/work/{work['assignment_id']}/submit", headers=person.headers,
                                        json={"annotations": annotations})
            assert answer.status_code == 200, answer.get_json()
            submitted += 1
    return submitted


@dataclass
class Labelled:
    project_id: int
    headers: dict
    people: list


@pytest.fixture
def labelled(projects, annotators, run_jobs):  # noqa: F811
    """A live text project whose items were all labelled by `overlap` annotators, then scored and paid."""

    def make(items: int = 6, overlap: int = 2, per_task: int = 2, gold: int = 0,
             label_of=lambda person, item: "Positive") -> Labelled:
        project_id = projects.live(items=items, overlap=overlap, per_task=per_task, gold=gold)
        people = annotators(overlap)
        label_all(people, project_id, label_of)
        run_jobs()
        return Labelled(project_id, projects.requester.headers, people)

    return make


def png(width: int, height: int, shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def box(label: str, x: float, y: float, w: float, h: float, width: int, height: int) -> dict:
    return {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "original_width": width, "original_height": height, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}}


@pytest.fixture
def image_project(client, teams, annotators, run_jobs):  # noqa: F811
    """A live bounding-box project over uploaded images, every image boxed by two annotators."""

    def make(n_images: int = 3, extra_tasks: list | None = None) -> Labelled:
        requester = teams.requester()
        headers = requester.headers
        project = client.post("/api/projects/", headers=headers, json={
            "title": "Street", "label_config": IMAGE_CONFIG, "overlap": 2, "items_per_micro_task": 1,
            "pay_per_micro_task": 40, "estimated_seconds_per_micro_task": 30}).get_json()
        files = {f"file{i}": (io.BytesIO(png(64 + 8 * i, 48, 40 * i)), f"street-{i}.png") for i in range(n_images)}
        response = client.post(f"/api/projects/{project['id']}/import", headers=headers, data=files,
                               content_type="multipart/form-data")
        assert response.status_code == 201, response.get_json()
        run_jobs()
        if extra_tasks:
            response = client.post(f"/api/projects/{project['id']}/import", headers=headers, json=extra_tasks)
            assert response.status_code == 201, response.get_json()
        assert client.post(f"/api/projects/{project['id']}/publish", headers=headers).status_code == 200
        run_jobs()
        people = annotators(2)

        def result_of(person, item):
            width, height = item["data"].get("width", 100), item["data"].get("height", 100)
            shift = 1.0 if person is people[0] else 1.5
            return [box("Car", 10 + shift, 20, 30, 25, width, height), box("Person", 60, 50 - shift, 20, 40, width, height)]

        label_all(people, project["id"], result_of=result_of)
        run_jobs()
        return Labelled(project["id"], headers, people)

    return make
