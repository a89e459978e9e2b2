"""Annotators only receive work their profile and the project's filters allow."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from annotate.extensions import db, redis
from annotate.models import Assignment, MicroTask
from annotate.services import profiles, work
from annotate.services.errors import DomainError
from tests.conftest import choice


def test_an_opted_out_annotator_never_sees_that_content(projects, annotators):
    project = projects.live(items=4, per_task=2, overlap=2, content_categories=["violence"])
    ana, ben = annotators(2)
    ana.profile(opted_out_categories=["violence"])
    assert ana.next().status_code == 204
    assert ana.next(project).status_code == 204
    assert ben.next().get_json()["project"] == project
    ana.profile(opted_out_categories=[])  # takes effect on the next request
    assert ana.next().get_json()["project"] == project


def test_required_languages_must_be_declared(projects, annotators):
    project = projects.live(items=2, per_task=2, required_languages=["de"])
    (ana,) = annotators(1)
    assert ana.next().status_code == 204
    ana.profile(languages=[{"code": "en", "level": "native"}, {"code": "DE", "level": "fluent"}])
    assert ana.next().get_json()["project"] == project


def test_the_share_cap_spreads_the_work(projects, annotators):
    projects.live(items=6, per_task=2, overlap=1, max_share_per_annotator=0.34)  # 3 micro-tasks: 1 each
    ana, ben = annotators(2)
    assert ana.submit(ana.next().get_json()).status_code == 200
    assert ana.next().status_code == 204  # two are left, but not for Ana
    assert ben.next().status_code == 200


def test_profile_changes_survive_losing_redis(projects, annotators, app):
    projects.live(items=2, per_task=2, content_categories=["medical"])
    (ana,) = annotators(1)
    ana.profile(opted_out_categories=["medical"])
    with app.app_context():
        redis.client.flushdb()
    assert ana.next().status_code == 204


def test_bad_profile_input_says_what_is_wrong(annotators, client, auth, people):
    (ana,) = annotators(1)
    response = ana.client.put("/api/profile", headers=ana.headers, json={"languages": [{"code": "english"}]})
    assert response.status_code == 400
    assert "'english' is not a two-letter ISO 639-1 code" in response.get_json()["detail"]
    response = ana.client.put("/api/profile", headers=ana.headers, json={"opted_out_categories": ["spiders"]})
    assert response.status_code == 400 and "'spiders' is not one of adult, medical, violence" in response.get_json()["detail"]


def test_the_profile_page_saves_what_the_annotator_declares(client, auth, people):
    person = people.make()
    auth.login(person)
    response = client.post("/profile/", data={"language_code": ["fr", ""], "language_level": ["native", "fluent"],
                                              "opted_out": ["adult"], "liked": ["bounding_boxes"]})
    assert response.status_code == 302
    page = client.get("/profile/").get_data(as_text=True)
    assert 'value="fr"' in page
    assert re.search(r'value="adult"\s+checked', page) and not re.search(r'value="violence"\s+checked', page)
    assert client.get("/api/profile").get_json() == {
        "languages": [{"code": "fr", "level": "native"}], "opted_out_categories": ["adult"],
        "liked_kinds": ["bounding_boxes"]}


@pytest.mark.slow
def test_eligibility_and_the_cap_hold_under_interleaved_profile_changes(app, projects, people):
    annotator_ids = [people.make().id for _ in range(3)]

    class Matching(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            self.project = projects.live(items=8, per_task=2, overlap=2, content_categories=["violence"],
                                         required_languages=["es"], max_share_per_annotator=0.5)
            self.cap = 2  # half of 4 micro-tasks
            self.last: dict[int, int] = {}

        def teardown(self):
            self.ctx.pop()

        @rule(who=st.integers(0, 2), opted_out=st.booleans(), spanish=st.booleans())
        def change_profile(self, who, opted_out, spanish):
            profiles.update_profile(annotator_ids[who], {
                "opted_out_categories": ["violence"] if opted_out else [],
                "languages": [{"code": "es", "level": "fluent"}] if spanish else []})

        @rule(who=st.integers(0, 2))
        def ask(self, who):
            annotator = annotator_ids[who]
            view = profiles.get_profile(annotator)
            allowed = "violence" not in view.opted_out_categories and any(
                l["code"] == "es" for l in view.languages)
            try:
                got = work.next_assignment(annotator, self.project)
            except DomainError:
                got = None
            db.session.rollback()
            if got is not None:
                # A new hand-out must be allowed by the profile as it is at that moment;
                # a lease taken before a change is returned again until it ends.
                assert allowed or got["assignment_id"] == self.last.get(annotator)
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

        @invariant()
        def cap_holds(self):
            counts = db.session.execute(
                select(Assignment.annotator_id, func.count()).join(MicroTask)
                .where(Assignment.project_id == self.project, MicroTask.is_qualification.is_(False),
                       Assignment.status.in_(("leased", "submitted"))).group_by(Assignment.annotator_id)).all()
            db.session.rollback()
            assert all(n <= self.cap for _a, n in counts), counts

    run_state_machine_as_test(Matching, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
