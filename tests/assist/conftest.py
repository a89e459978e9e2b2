"""Assisted projects: sentiment items whose words give their label away, and
annotators who label them through the work API."""
from __future__ import annotations

import random

import pytest

from tests.conftest import TEXT_CONFIG, choice
from tests.work.conftest import Annotator

GOOD = ["good", "great", "lovely", "fine", "superb"]
BAD = ["bad", "awful", "poor", "broken", "terrible"]
FILLER = ["the", "film", "plot", "actor", "scene", "story", "music", "ending"]


def sentence(positive: bool, rng: random.Random) -> str:
    words = rng.sample(GOOD if positive else BAD, 2) + rng.sample(FILLER, 4)
    rng.shuffle(words)
    return " ".join(words)


def truth(text: str) -> str:
    return "Positive" if any(w in text.split() for w in GOOD) else "Negative"


class AssistedProjects:
    def __init__(self, client, teams, run_jobs):
        self.client, self.teams, self.run_jobs = client, teams, run_jobs
        self.requester = None

    def live(self, items: int = 60, *, overlap: int = 2, per_task: int = 5, gold: int = 0, seed: int = 1,
             **settings) -> int:
        if self.requester is None:
            self.requester = self.teams.requester()
        rng = random.Random(seed)
        body = {"title": "Assisted", "label_config": TEXT_CONFIG, "overlap": overlap, "max_overlap": overlap,
                "items_per_micro_task": per_task, "pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60,
                "assist": "builtin", "show_predictions": True, "unassisted_share": 0.0, **settings}
        response = self.client.post("/api/projects/", headers=self.requester.headers, json=body)
        assert response.status_code == 201, response.get_json()
        project = response.get_json()["id"]
        tasks = [{"data": {"text": sentence(i % 2 == 0, rng)}} for i in range(items)]
        assert self.client.post(f"/api/projects/{project}/import", headers=self.requester.headers,
                                json=tasks).status_code == 201
        if gold:
            golden = [{"data": {"text": f"gold {sentence(i % 2 == 0, rng)}"}} for i in range(gold)]
            for task in golden:
                task["annotations"] = [{"result": choice(truth(task["data"]["text"]))}]
            response = self.client.post(f"/api/projects/{project}/import?gold=1", headers=self.requester.headers,
                                        json=golden)
            assert response.status_code == 201, response.get_json()
        published = self.client.post(f"/api/projects/{project}/publish", headers=self.requester.headers)
        assert published.status_code == 200, published.get_json()
        self.run_jobs()
        return project


class Labeler(Annotator):
    """An annotator who gets every label right, always says `always`, or accepts the pre-annotation."""

    def label(self, project: int, *, always: str | None = None, accept: bool = False) -> dict | None:
        work = self.next(project)
        if work.status_code == 204:
            return None
        assert work.status_code == 200, work.get_json()
        assignment = work.get_json()
        annotations = []
        for item in assignment["items"]:
            predicted = (item.get("predictions") or [None])[0]
            result = (predicted["result"] if accept and predicted else
                      choice(always or truth(item["data"]["text"])))
            annotations.append({"item_id": item["id"], "result": result, "seconds": 2.0})
        submitted = self.client.post(f"/api/work/{assignment['assignment_id']}/submit", headers=self.headers,
                                     json={"annotations": annotations})
        assert submitted.status_code == 200, submitted.get_json()
        return assignment


@pytest.fixture
def assisted(client, teams, run_jobs) -> AssistedProjects:
    return AssistedProjects(client, teams, run_jobs)


@pytest.fixture
def labelers(app, people):
    def make(n: int = 2):
        return [Labeler(app, people.make()) for _ in range(n)]

    return make


def label_micro_tasks(project: int, workers: list[Labeler], count: int, run_jobs) -> None:
    """`count` micro-tasks labeled by every worker (overlap = len(workers)), then the scoring jobs."""
    for _ in range(count):
        for worker in workers:
            assert worker.label(project) is not None
    run_jobs()
