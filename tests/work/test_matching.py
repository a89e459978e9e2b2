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


def test_next_without_a_project_orders_by_expected_earnings_for_this_annotator(app):
    """The dispatch script's order, on a hand-made state, against hand-computed figures."""
    from annotate.scoring import matching
    from tasks.dispatch import AnnotatorState, Dispatch, MicroTaskState, ProjectState

    text, image, medical = 8, 9, 7  # skill ids: the platform's for text and image work, and a requester's
    projects_ = [  # (id, kind, rate in cents an hour at the usual pace, priority, minimums)
        (1, "text_classification", 3600, 0, {}),
        (2, "bounding_boxes", 5000, 0, {}),
        (3, "text_classification", 6000, 0, {medical: 40}),
        (4, "text_classification", 6000, 0, {}),
        (5, "text_classification", 1000, 1, {}),
    ]
    levels = {medical: 90, text: 70}
    fast = AnnotatorState(42, skills=tuple(levels.items()), speeds=(("text_classification", 2000),))
    new = AnnotatorState(43, skills=tuple(levels.items()))
    # Ada (42) takes a fifth of the usual time on text work: 5 times the rate there.
    #   5: priority 1 first (1000 x 5 = 5000); 4: 6000 x 5 = 30000, margin 70; 3: 30000, margin
    #   min(90 - 40, 70 - 0) = 50; 1: 3600 x 5 = 18000; 2: 5000 (no image evidence: the usual pace).
    # Ben (43), no evidence: 5; then 4 and 3 (6000, margins 70 and 50); 2 (5000); 1 (3600).
    expected = {42: [5, 4, 3, 1, 2], 43: [5, 4, 3, 2, 1]}
    with app.app_context():
        d = Dispatch(redis.client)
        d.clear()
        d.load([ProjectState(pid, prio, 600, False, skills=tuple(mins.items()), config_kind=kind, rate=rate,
                             kind_skill=text if kind == "text_classification" else image)
                for pid, kind, rate, prio, mins in projects_],
               [MicroTaskState(100 + pid, pid, 1, 2) for pid, *_ in projects_], [], [], [fast, new])
        for annotator in (fast, new):
            pace = dict(annotator.speeds)
            keys = sorted((matching.order_key(prio, False, matching.expected_rate(rate, pace.get(kind, matching.BP)),
                                              matching.margin(mins, levels, text if kind == "text_classification"
                                                              else image), pid), pid)
                          for pid, kind, rate, prio, mins in projects_)
            assert [pid for _key, pid in keys] == expected[annotator.id]
            handed = []
            for _ in projects_:
                offer = d.next(annotator.id, None)
                handed.append(offer.project_id)
                d.finish(offer.micro_task_id, annotator.id, offer.project_id)
            assert handed == expected[annotator.id]
            assert d.next(annotator.id, None).kind == "none"


def test_expected_rates_and_margins_are_whole_numbers():
    from annotate.scoring import matching

    ref = matching.reference([5.0, 7.0, 6.0], estimate=60)
    assert (ref.seconds, ref.basis, ref.n) == (6, "median", 3)
    assert matching.reference([5.0, 7.0], estimate=60) == matching.Reference(60, "estimate", 2)
    assert matching.project_rate(40, matching.Reference(60, "estimate")) == 2400
    assert matching.speed([6 / 60, 12 / 60, 3 / 60]) == 1000
    assert matching.speed([]) == matching.BP and matching.speed([1000.0]) == matching.SPEED_LIMITS[1]
    assert matching.expected_rate(2400, 1000) == 24000 and matching.expected_rate(1000, 3000) == 3333
    assert matching.expected_seconds(60, 1000) == 6 and matching.expected_seconds(7, 15000) == 11
    assert matching.margin({7: 40}, {7: 90, 8: 70}, kind_skill=8) == 50
    assert matching.margin({}, {}, kind_skill=0) == 0


@pytest.mark.slow
def test_eligibility_and_the_cap_hold_under_interleaved_profile_changes(app, projects, people):
    from annotate.services import skills

    annotator_ids = [people.make().id for _ in range(3)]
    operator = people.make("operator").id

    class Matching(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            self.project = projects.live(items=8, per_task=2, overlap=2, content_categories=["violence"],
                                         required_languages=["es"], max_share_per_annotator=0.5)
            self.cap = 2  # half of 4 micro-tasks
            # A second project, better paid, for those at 60 or above in a skill: `next` without
            # a project prefers it and must still never hand it to anyone below the minimum.
            self.expert = projects.live(items=8, per_task=2, overlap=2, pay_per_micro_task=90)
            self.skill = skills.create_skill(operator, f"Expert {self.expert}").id
            skills.set_project_skills(projects.requester.person.id, self.expert,
                                      [{"skill_id": self.skill, "min_level": 60}])
            self.last: dict[int, int] = {}

        def teardown(self):
            # The next example's `next` without a project must not reach this example's projects.
            for project in (self.project, self.expert):
                work.pause(projects.requester.person.id, project)
            for assignment in db.session.scalars(select(Assignment).where(Assignment.status == "leased")).all():
                work.skip(assignment.annotator_id, assignment.id)
            self.ctx.pop()

        @rule(who=st.integers(0, 2), opted_out=st.booleans(), spanish=st.booleans())
        def change_profile(self, who, opted_out, spanish):
            profiles.update_profile(annotator_ids[who], {
                "opted_out_categories": ["violence"] if opted_out else [],
                "languages": [{"code": "es", "level": "fluent"}] if spanish else []})

        @rule(who=st.integers(0, 2), level=st.sampled_from([30, 59, 60, 90]))
        def change_skill(self, who, level):
            skills.adjust_level(operator, annotator_ids[who], self.skill, level, "hypothesis says so")

        @rule(who=st.integers(0, 2), which=st.sampled_from(["filtered", "expert", "any"]))
        def ask(self, who, which):
            annotator = annotator_ids[who]
            view = profiles.get_profile(annotator)
            allowed = {
                self.project: "violence" not in view.opted_out_categories and any(
                    l["code"] == "es" for l in view.languages),
                self.expert: any(v.skill_id == self.skill and v.level >= 60 for v in skills.levels_of(annotator)),
            }
            wanted = {"filtered": self.project, "expert": self.expert, "any": None}[which]
            try:
                got = work.next_assignment(annotator, wanted)
            except DomainError:
                got = None
            db.session.rollback()
            if got is not None:
                # A new hand-out must be allowed by the profile and levels as they are at that
                # moment; a lease taken before a change is returned again until it ends.
                assert allowed[got["project"]] or got["assignment_id"] in self.last.values(), (which, got["project"])
                self.last[(annotator, got["project"])] = got["assignment_id"]

        @rule(who=st.integers(0, 2), which=st.booleans())
        def submit(self, who, which):
            annotator = annotator_ids[who]
            key = (annotator, self.project if which else self.expert)
            if key in self.last:
                assignment = db.session.get(Assignment, self.last[key])
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
