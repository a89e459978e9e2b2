"""Skills through the API and the pages: requesters set what a project asks
for, operators adjust levels with a reason, annotators read their levels in
words; the filters apply on the next request for work."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from annotate.extensions import db, redis
from annotate.models import AuditEntry
from tests.conftest import csrf_token_from
from tests.work.conftest import annotators, projects  # noqa: F401  (fixtures)


def _skill(client, requester, name: str = "Sentiment") -> int:
    response = client.post("/api/skills", headers=requester.headers, json={"name": name, "description": "what"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _operator_headers(app, teams) -> dict:
    from annotate.services import accounts

    with app.app_context():
        return {"Authorization": f"Token {accounts.create_token(teams.operator.id, 'ops').key}"}


def test_a_qualification_pass_grants_the_skill_and_opens_projects_that_ask_for_it(client, projects, annotators,
                                                                                   run_jobs):
    test = projects.live(items=2, per_task=2, overlap=1, gold=2, qualification=2)  # pass: 1 of 2 gold right
    requester = projects.requester
    sentiment = _skill(client, requester)
    ana, ben, cat = annotators(3)
    # The project asks for Sentiment 70, which nobody has yet: everyone may still take the test that grants it.
    response = client.put(f"/api/projects/{test}/skills", headers=requester.headers,
                          json={"skills": [{"skill_id": sentiment, "min_level": 70}]})
    assert response.status_code == 200
    assert response.get_json() == [{"skill_id": sentiment, "name": "Sentiment", "config_kind": None, "min_level": 70}]
    for worker in (ana, ben, cat):
        assert worker.next(test).get_json()["is_qualification"]
    expert = projects.live(items=4, per_task=2, overlap=2)
    assert client.put(f"/api/projects/{expert}/skills", headers=requester.headers,
                      json=[{"skill_id": sentiment, "min_level": 70}]).status_code == 200

    # Gold answers are Positive: Ana passes with 2 of 2, Ben fails with 0 of 2.
    assert ana.submit(ana.next(test).get_json(), "Positive").get_json()["qualification"]["passed"]
    assert not ben.submit(ben.next(test).get_json(), "Negative").get_json()["qualification"]["passed"]
    run_jobs()

    levels = {v["skill"]: v for v in ana.client.get("/api/profile/skills", headers=ana.headers).get_json()}
    # 2 of 2 gold gives 100 * (3*2 + 5) / (3*2 + 10) = 68.75 -> 69; the pass lifts it to the minimum, 70.
    assert levels["Sentiment"]["level"] == 70
    assert levels["Sentiment"]["words"] == ("70: 2 gold items on 1 project, 2 right; "
                                            "at least 70 for passing the qualification of 'Sentiment'")
    assert levels["Text classification"]["level"] == 69  # the platform's skill for the kind: evidence only
    assert ana.next(expert).get_json()["project"] == expert
    assert ben.next(expert).status_code == 204
    assert ana.next(test).get_json()["is_qualification"] is False  # the test's own regular work opens too
    assert ben.next(test).status_code == 204
    ben_levels = {v["skill"]: v["level"] for v in ben.client.get("/api/profile/skills", headers=ben.headers).get_json()}
    assert ben_levels["Sentiment"] == 31  # 0 of 2 gold: 100 * 5 / 16 = 31.25, and no floor


def test_project_skill_filters_set_through_the_api_apply_on_the_next_request(app, client, teams, projects, annotators):
    project = projects.live(items=4, per_task=2, overlap=2)
    requester = projects.requester
    medical = _skill(client, requester, "Medical terminology")
    ana, ben = annotators(2)
    ops = _operator_headers(app, teams)
    adjusted = client.post(f"/api/annotators/{ana.id}/skills/{medical}", headers=ops,
                           json={"level": 80, "reason": "registered nurse"})
    assert adjusted.status_code == 200 and adjusted.get_json()["level"] == 80
    assert client.put(f"/api/projects/{project}/skills", headers=requester.headers,
                      json=[{"skill_id": medical, "min_level": 60}]).status_code == 200
    assert client.get(f"/api/projects/{project}/skills", headers=requester.headers).get_json()[0]["min_level"] == 60
    assert ben.next().status_code == 204
    lease = ana.next().get_json()
    assert lease["project"] == project
    # The operator lowers Ana below the minimum: she finishes her lease, and gets nothing new.
    client.post(f"/api/annotators/{ana.id}/skills/{medical}", headers=ops, json={"level": 50, "reason": "lapsed"})
    assert ana.submit(lease).status_code == 200
    assert ana.next().status_code == 204
    with app.app_context():
        redis.client.flushdb()  # levels and filters are rebuilt from SQL
    assert ana.next().status_code == 204
    # No minimum any more: both get work at once.
    assert client.put(f"/api/projects/{project}/skills", headers=requester.headers, json=[]).status_code == 200
    assert ben.next().get_json()["project"] == project
    assert ana.next().get_json()["project"] == project


def test_bad_skill_input_is_refused_naming_the_field(app, client, teams, projects, annotators, people):
    project = projects.live(items=2, per_task=2)
    requester = projects.requester
    sentiment = _skill(client, requester)
    put = lambda body, headers=requester.headers: client.put(f"/api/projects/{project}/skills",  # noqa: E731
                                                             headers=headers, json=body)
    for body, field, words in (
            ({"skills": "Sentiment"}, "skills", "skills must be a list"),
            ([{"skill_id": sentiment, "min_level": 101}], "min_level",
             "skill 1: min_level must be a whole number from 0 to 100"),
            ([{"skill_id": 9999, "min_level": 10}], "skill_id", "there is no skill 9999"),
            ([{"skill_id": sentiment}, {"skill_id": sentiment}], "skill_id", "skill 2: skill"),
            ([{"skill_id": "x"}], "skill_id", "skill 1: skill_id must be a whole number")):
        response = put(body)
        assert response.status_code == 400, body
        assert field in response.get_json()["validation_errors"] and words in response.get_json()["detail"]
    other_team = teams.requester("Audio")
    assert put([], other_team.headers).status_code == 404
    (ana,) = annotators(1)
    assert put([], ana.headers).status_code == 403
    unnamed = client.post("/api/skills", headers=requester.headers, json={"name": " "})
    assert unnamed.get_json()["validation_errors"] == {
        "name": ["name is required: what the skill measures, e.g. Medical terminology"]}
    assert client.post("/api/skills", headers=requester.headers, json={"name": "Sentiment"}).status_code == 409
    assert client.post("/api/skills", headers=ana.headers, json={"name": "Mine"}).status_code == 403

    ops = _operator_headers(app, teams)
    adjust = f"/api/annotators/{ana.id}/skills/{sentiment}"
    response = client.post(adjust, headers=ops, json={"level": 90, "reason": ""})
    assert response.status_code == 400 and "reason" in response.get_json()["validation_errors"]
    response = client.post(adjust, headers=ops, json={"level": "high", "reason": "x"})
    assert response.status_code == 400 and "level" in response.get_json()["validation_errors"]
    assert client.post(adjust, headers=requester.headers, json={"level": 90, "reason": "x"}).status_code == 403
    assert client.post(adjust, headers=ana.headers, json={"level": 90, "reason": "x"}).status_code == 403
    assert client.post(f"/api/annotators/{ana.id}/skills/9999", headers=ops,
                       json={"level": 90, "reason": "x"}).status_code == 404


def test_levels_follow_scored_work_in_the_background(projects, annotators, run_jobs):
    # Micro-tasks of 2: 1 item and 1 gold item (gold_share 0.5); Ana and Ben take the first.
    project = projects.live(items=2, per_task=2, overlap=2, gold=1, gold_share=0.5)
    ana, ben = annotators(2)
    for someone in (ana, ben):
        assert someone.submit(someone.next(project).get_json(), "Positive").status_code == 200
    run_jobs()  # scoring, then the skills background job it queues
    (level,) = ana.client.get("/api/profile/skills", headers=ana.headers).get_json()
    # 1 of 1 gold and 1 of 1 item agreed: 100 * (3 + 1 + 5) / (3 + 1 + 10) = 64.3 -> 64.
    assert (level["skill"], level["level"], level["confidence"]) == ("Text classification", 64, round(4 / 14, 4))
    assert level["words"] == "64: 1 gold item on 1 project, 1 right; agreed with consensus on 1 of 1 item"
    assert level["history"][0]["reason"] == "recomputed from evidence"


def test_pages_set_skills_adjust_levels_and_show_them_in_words(app, client, auth, teams, projects, annotators):
    project = projects.live(items=2, per_task=2)
    requester = projects.requester
    (ana,) = annotators(1)

    auth.login(requester.person)
    page = client.get(f"/projects/{project}").get_data(as_text=True)
    assert 'id="skills"' in page and "Text classification (platform)" in page
    assert client.post(f"/projects/{project}/skills/new", data={"name": "Sentiment"}).status_code == 302
    page = client.get(f"/projects/{project}").get_data(as_text=True)
    sentiment = int(re.search(r'<option value="(\d+)">Sentiment</option>', page).group(1))
    refused = client.post(f"/projects/{project}/skills", data={"skill_id": [str(sentiment)], "min_level": ["150"]})
    assert refused.status_code == 400
    assert "min_level must be a whole number from 0 to 100" in refused.get_data(as_text=True)
    saved = client.post(f"/projects/{project}/skills", data={"skill_id": [str(sentiment), ""], "min_level": ["40", ""]})
    assert saved.status_code == 302
    page = client.get(f"/projects/{project}").get_data(as_text=True)
    assert f'<option value="{sentiment}" selected>Sentiment</option>' in page and 'value="40"' in page
    auth.logout()
    assert ana.next().status_code == 204  # no level in Sentiment yet

    auth.login(teams.operator)
    page = client.get("/console/skills").get_data(as_text=True)
    assert "Sentiment" in page and "platform · bounding boxes" in page
    refused = client.post(f"/console/skills/{sentiment}/levels", data={"annotator": ana.person.email, "level": "45",
                                                                      "reason": ""})
    assert refused.status_code == 400 and "reason is required" in refused.get_data(as_text=True)
    done = client.post(f"/console/skills/{sentiment}/levels", data={"annotator": ana.person.email, "level": "45",
                                                                   "reason": "did well on the pilot"})
    assert done.status_code == 302
    page = client.get(f"/console/skills/{sentiment}").get_data(as_text=True)
    assert "45: no evidence yet, so a middling start; -5 by an operator: did well on the pilot" in page
    auth.logout()
    assert ana.next().get_json()["project"] == project  # 45 >= 40: from the next request

    auth.login(ana.person)
    page = client.get("/profile/").get_data(as_text=True)
    assert "Your skills" in page and "45: no evidence yet, so a middling start; -5 by an operator" in page
    assert "0%" in page and "set by Test Person: did well on the pilot" in page
    with app.app_context():
        entry = db.session.query(AuditEntry).filter_by(action="adjust_skill_level").one()
        assert (entry.actor_id, entry.target_id) == (teams.operator.id, ana.id)


def test_only_operators_reach_the_skills_console(client, auth, people):
    for roles in ((), ("requester",)):
        auth.login(people.make(*roles))
        assert client.get("/console/skills").status_code == 403
        assert client.post("/console/skills", data={"name": "x"}).status_code == 403
        auth.logout()
    auth.login(people.make("operator"))
    assert client.get("/console/skills").status_code == 200
    page = client.post("/console/skills", data={"name": "Sarcasm"}, follow_redirects=True).get_data(as_text=True)
    assert "Sarcasm" in page
    token = csrf_token_from(page)
    assert token  # the page's forms carry the token


@pytest.mark.slow
def test_skill_minimums_hold_under_interleaved_level_changes(app, teams, projects, people):
    from annotate.models import Assignment
    from annotate.services import skills, work
    from annotate.services.errors import DomainError
    from tests.conftest import choice

    annotator_ids = [people.make().id for _ in range(3)]

    class Matching(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            self.project = projects.live(items=8, per_task=2, overlap=2)
            self.operator = teams.operator.id
            self.skill = skills.create_skill(self.operator, f"Skill of project {self.project}").id
            skills.set_project_skills(self.operator, self.project, [{"skill_id": self.skill, "min_level": 60}])
            self.last: dict[int, int] = {}

        def teardown(self):
            self.ctx.pop()

        @rule(who=st.integers(0, 2), level=st.sampled_from([0, 59, 60, 100]))
        def adjust(self, who, level):
            skills.adjust_level(self.operator, annotator_ids[who], self.skill, level, "hypothesis says so")

        @rule(who=st.integers(0, 2))
        def ask(self, who):
            annotator = annotator_ids[who]
            level = next((v.level for v in skills.levels_of(annotator) if v.skill_id == self.skill), None)
            try:
                got = work.next_assignment(annotator, self.project)
            except DomainError:
                got = None
            db.session.rollback()
            if got is not None:
                # A new hand-out needs the level as it is now; a lease taken before comes back until it ends.
                assert (level is not None and level >= 60) or got["assignment_id"] == self.last.get(annotator)
                self.last[annotator] = got["assignment_id"]

        @rule(who=st.integers(0, 2))
        def submit(self, who):
            annotator = annotator_ids[who]
            if annotator in self.last:
                assignment = db.session.get(Assignment, self.last[annotator])
                annotations = [{"item_id": i.item_id, "result": choice("Positive"), "seconds": 1}
                               for i in assignment.micro_task.items]
                try:
                    work.submit(annotator, assignment.id, annotations)
                except DomainError:
                    pass
                db.session.rollback()

        @rule()
        def lose_redis(self):
            redis.client.flushdb()

    run_state_machine_as_test(Matching, settings=settings(
        max_examples=15, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
