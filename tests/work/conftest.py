"""Live projects for the dispatch tests, built through the same API requesters use."""
from __future__ import annotations

import pytest

from tests.conftest import TEXT_CONFIG, choice


class Projects:
    def __init__(self, client, teams, run_jobs):
        self.client = client
        self.teams = teams
        self.run_jobs = run_jobs
        self.requester = None

    def live(self, items: int = 6, *, overlap: int = 2, per_task: int = 2, gold: int = 0, qualification: int = 0,
             gold_share: float = 0.0, lease_seconds: int = 600, show_predictions: bool = False,
             predictions: bool = False, priority: int = 0, **settings) -> int:
        if self.requester is None:
            self.requester = self.teams.requester()
        headers = self.requester.headers
        settings.setdefault("unassisted_share", 0.0)  # every assignment shows predictions unless a test asks
        project = self.client.post("/api/projects/", headers=headers, json={
            "title": "Sentiment", "label_config": TEXT_CONFIG, "overlap": overlap, "items_per_micro_task": per_task,
            "pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60, "lease_seconds": lease_seconds,
            "qualification_gold_count": qualification, "qualification_min_accuracy": 0.5, "gold_share": gold_share,
            "show_predictions": show_predictions, "priority": priority, **settings}).get_json()
        tasks = []
        for i in range(items):
            task = {"data": {"text": f"item {i}"}}
            if predictions:
                task["predictions"] = [{"result": choice("Positive"), "score": 0.8, "model_version": "m1"}]
            tasks.append(task)
        assert self.client.post(f"/api/projects/{project['id']}/import", headers=headers, json=tasks).status_code == 201
        if gold:
            gold_tasks = [{"data": {"text": f"gold {i}"}, "annotations": [{"result": choice("Positive")}]}
                          for i in range(gold)]
            response = self.client.post(f"/api/projects/{project['id']}/import?gold=1", headers=headers, json=gold_tasks)
            assert response.status_code == 201, response.get_json()
        published = self.client.post(f"/api/projects/{project['id']}/publish", headers=headers)
        assert published.status_code == 200, published.get_json()
        self.run_jobs()
        return project["id"]


@pytest.fixture
def projects(client, teams, run_jobs) -> Projects:
    return Projects(client, teams, run_jobs)


class Annotator:
    """An annotator using the work API with their own token."""

    def __init__(self, app, person):
        from annotate.services import accounts

        self.person = person
        self.client = app.test_client()
        with app.app_context():
            self.headers = {"Authorization": f"Token {accounts.create_token(person.id, 'work').key}"}

    @property
    def id(self) -> int:
        return self.person.id

    def next(self, project: int | None = None):
        return self.client.post("/api/work/next" + (f"?project={project}" if project else ""), headers=self.headers)

    def submit(self, assignment: dict, label: str = "Positive", seconds: float = 3.0):
        annotations = [{"item_id": item["id"], "result": choice(label), "seconds": seconds}
                       for item in assignment["items"]]
        return self.client.post(f"/api/work/{assignment['assignment_id']}/submit", headers=self.headers,
                                json={"annotations": annotations})

    def skip(self, assignment: dict, reason: str = ""):
        return self.client.post(f"/api/work/{assignment['assignment_id']}/skip", headers=self.headers,
                                json={"reason": reason})

    def profile(self, **fields):
        response = self.client.put("/api/profile", headers=self.headers, json=fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def heartbeat(self, assignment: dict):
        return self.client.post(f"/api/work/{assignment['assignment_id']}/heartbeat", headers=self.headers)


@pytest.fixture
def annotators(app, people):
    def make(n: int = 1):
        return [Annotator(app, people.make()) for _ in range(n)]

    return make
