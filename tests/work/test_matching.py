"""Annotators only receive work their profile and the project's filters allow."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
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
    from tasks.dispatch import AnnotatorState, MicroTaskState, ProjectState

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
        d = work.dispatcher()
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


def test_a_rate_refreshed_after_scoring_reorders_the_projects_and_keeps_their_filters(app):
    from tasks.dispatch import AnnotatorState, MicroTaskState, ProjectState

    with app.app_context():
        d = work.dispatcher()
        d.clear()
        d.load([ProjectState(1, 0, 600, False, config_kind="text_classification", rate=3600,
                             languages=("de",), deadline=2_000_000_000),
                ProjectState(2, 0, 600, False, config_kind="text_classification", rate=5000)],
               [MicroTaskState(pid * 100 + i, pid, i, 1) for pid in (1, 2) for i in range(1, 4)], [], [],
               [AnnotatorState(a, languages=("de",)) for a in (41, 42)] + [AnnotatorState(43)])
        assert d.next(41, None).project_id == 2
        d.set_rates({1: 9000})
        assert d.next(42, None).project_id == 1
        assert d.next(43, None).project_id == 2  # project 1 still asks for German
        d.set_rates({2: 12_000})
        assert d.next(43, None).project_id == 2 and d.next(41, None).kind == "held"


_KINDS = {"text_classification": 8, "bounding_boxes": 9}  # config kind -> the platform's skill for it


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_the_script_hands_out_projects_in_the_order_of_order_key(app, data):
    """The script stops ranking early when no project still to come can beat the best seen;
    whatever the rates, paces, deadlines and filters, it hands out what a full ranking would."""
    import time

    from annotate.scoring import matching
    from tasks.dispatch import AnnotatorState, MicroTaskState, ProjectState

    now = int(time.time())
    projects_ = []
    for pid in range(1, data.draw(st.integers(1, 12), "projects") + 1):
        projects_.append(dict(
            id=pid, prio=data.draw(st.sampled_from([0, 0, 1])), kind=data.draw(st.sampled_from(sorted(_KINDS))),
            rate=data.draw(st.sampled_from([0, 1000, 3000, 3000, 4500, 6000, 9000])),
            deadline=data.draw(st.sampled_from([0, 0, now + 3600, now + 7200, now + 30 * 86400])),
            mins=data.draw(st.sampled_from([{}, {}, {7: 40}, {7: 80}, {8: 50}])),
            langs=data.draw(st.sampled_from([(), (), ("de",)]))))
    levels = {7: data.draw(st.integers(0, 100)), 8: data.draw(st.integers(0, 100))}
    speeds = {kind: speed for kind in _KINDS
              if (speed := data.draw(st.sampled_from([None, 2500, 5000, 10000, 20000]))) is not None}
    langs = data.draw(st.sampled_from([(), ("de",)]))
    with app.app_context():
        d = work.dispatcher()
        d.clear()
        d.load([ProjectState(p["id"], p["prio"], 600, False, skills=tuple(p["mins"].items()), config_kind=p["kind"],
                             rate=p["rate"], kind_skill=_KINDS[p["kind"]], deadline=p["deadline"],
                             languages=p["langs"]) for p in projects_],
               [MicroTaskState(10 * p["id"], p["id"], 1, 1) for p in projects_], [], [],
               [AnnotatorState(42, languages=langs, skills=tuple(levels.items()), speeds=tuple(speeds.items()))])
        # Scoring refreshes some rates while the projects are live.
        refreshed = data.draw(st.dictionaries(st.sampled_from([p["id"] for p in projects_]),
                                              st.sampled_from([500, 3000, 7000, 12000]), max_size=4))
        d.set_rates(refreshed)
        for p in projects_:
            p["rate"] = refreshed.get(p["id"], p["rate"])
        open_to_them = [p for p in projects_ if set(p["langs"]) <= set(langs)
                        and all(levels.get(skill, 0) >= least for skill, least in p["mins"].items())]
        expected = sorted(open_to_them, key=lambda p: matching.order_key(
            p["prio"], False, matching.expected_rate(p["rate"], speeds.get(p["kind"], matching.BP)),
            matching.margin(p["mins"], levels, _KINDS[p["kind"]]), p["id"],
            p["deadline"] if p["deadline"] and p["deadline"] - now <= d.deadline_window else 0))
        handed = []
        for _ in open_to_them:
            offer = d.next(42, None)
            handed.append(offer.project_id)
            d.finish(offer.micro_task_id, 42, offer.project_id)
        assert handed == [p["id"] for p in expected]
        assert d.next(42, None).kind == "none"


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

        @rule(filtered=st.booleans(), hours=st.sampled_from([None, 1, 12, 48]))
        def set_deadline(self, filtered, hours):
            # A deadline moves a project up the order; it must never open it to anyone.
            due = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat() if hours else None
            work.update_project(projects.requester.person.id, self.project if filtered else self.expert,
                                {"deadline": due})

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


def _hand_made(app, projects_, annotator):
    """Load a hand-made dispatch state: (id, rate, priority, deadline epoch or 0) per project."""
    from tasks.dispatch import MicroTaskState, ProjectState

    d = work.dispatcher()
    d.clear()
    d.load([ProjectState(pid, prio, 600, False, config_kind="text_classification", rate=rate, deadline=deadline)
            for pid, rate, prio, deadline in projects_],
           [MicroTaskState(100 + pid, pid, 1, 2) for pid, *_ in projects_], [], [], [annotator])
    return d


def test_a_project_due_soon_with_work_left_comes_before_better_paid_work(app):
    """Within a priority: due within a day (nearest first, overdue first of all), then the rate."""
    import time

    from annotate.scoring import matching
    from tasks.dispatch import AnnotatorState

    now = int(time.time())
    hour = 3600
    projects_ = [  # (id, rate, priority, deadline)
        (1, 9000, 0, 0),                  # best paid, no deadline
        (2, 1000, 0, now + 20 * hour),    # due within a day
        (3, 2000, 0, now + 3 * hour),     # due sooner
        (4, 8000, 0, now + 30 * hour),    # a deadline, but not within a day: ranked by its rate
        (5, 500, 0, now - hour),          # overdue and still with work left
        (6, 100, 1, 0),                   # higher priority beats every deadline
    ]
    expected = [6, 5, 3, 2, 1, 4]
    with app.app_context():
        d = _hand_made(app, projects_, AnnotatorState(42))
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        keys = sorted((matching.order_key(prio, False, rate, 0, pid, matching.due(
            dt.datetime.fromtimestamp(deadline, dt.UTC) if deadline else None, at, 24 * hour)), pid)
            for pid, rate, prio, deadline in projects_)
        assert [pid for _key, pid in keys] == expected
        handed = []
        for _ in projects_:
            offer = d.next(42, None, now=now)
            handed.append(offer.project_id)
            d.finish(offer.micro_task_id, 42, offer.project_id)
        assert handed == expected


def test_a_due_project_without_work_left_for_the_annotator_does_not_hold_them_up(app):
    import time

    from tasks.dispatch import AnnotatorState

    now = int(time.time())
    with app.app_context():
        d = _hand_made(app, [(1, 100, 0, now + 60), (2, 9000, 0, 0)], AnnotatorState(42))
        first = d.next(42, None, now=now)
        assert first.project_id == 1
        d.finish(first.micro_task_id, 42, 1)
        assert d.next(42, None, now=now).project_id == 2  # project 1 has nothing more for them


def test_rates_in_other_currencies_are_ranked_at_the_operators_exchange_rates(app, projects, annotators):
    """Pay and the page stay in each project's currency; only the order converts."""
    app.config["PAY_FLOORS"] = "USD:1200,EUR:1100,JPY:1500,GBP:1000"
    app.config["RANKING_EXCHANGE_RATES"] = {"EUR": "1.10", "JPY": "0.0067"}
    # 60 s a micro-task: USD 0.60 -> 3600 US cents an hour; EUR 0.50 -> 3000 euro cents = 3300 US
    # cents; JPY 100 -> 6000 yen = 4020 US cents; GBP has no rate: after every comparable one.
    usd = projects.live(items=2, pay_per_micro_task=60, currency="USD")
    eur = projects.live(items=2, pay_per_micro_task=50, currency="EUR")
    jpy = projects.live(items=2, pay_per_micro_task=100, currency="JPY")
    gbp = projects.live(items=2, pay_per_micro_task=900, currency="GBP")
    (ana,) = annotators(1)
    order = []
    for _ in range(4):
        work = ana.next().get_json()
        order.append(work["project"])
        assert ana.submit(work).status_code == 200
    assert order == [jpy, usd, eur, gbp]  # raw minor units would have put GBP (900) and JPY first


def test_the_ranking_currency_conversion_is_exact_and_refuses_nothing_silently():
    from annotate import config
    from annotate.scoring import matching

    rates = {"EUR": "1.10", "JPY": "0.0067", "KWD": "3.25"}
    assert matching.in_ranking_currency(3000, "EUR", "USD", rates) == 3300
    assert matching.in_ranking_currency(6000, "JPY", "USD", rates) == 4020  # yen have no minor digits
    assert matching.in_ranking_currency(1000, "KWD", "USD", rates) == 325  # fils: three digits
    assert matching.in_ranking_currency(500, "USD", "USD", {}) == 500
    assert matching.in_ranking_currency(500, "GBP", "USD", rates) is None
    env = {"SECRET_KEY": "x", "RANKING_EXCHANGE_RATES": "eur:1.10, JPY:0.0067"}
    loaded = config.load("/tmp/annotate-unused", env)
    assert loaded["RANKING_EXCHANGE_RATES"] == {"EUR": "1.10", "JPY": "0.0067"}
    assert loaded["RANKING_CURRENCY"] == "USD"
    for bad, words in (("EUR=1.1", "RANKING_EXCHANGE_RATES: 'EUR=1.1' must be CODE:RATE"),
                       ("EUR:-2", "RANKING_EXCHANGE_RATES: the rate of EUR must be a positive decimal"),
                       ("EUR:abc", "RANKING_EXCHANGE_RATES: the rate of EUR must be a positive decimal")):
        with pytest.raises(config.ConfigError, match=re.escape(words)):
            config.load("/tmp/annotate-unused", {**env, "RANKING_EXCHANGE_RATES": bad})
    with pytest.raises(config.ConfigError, match="RANKING_CURRENCY must be a three-letter"):
        config.load("/tmp/annotate-unused", {**env, "RANKING_CURRENCY": "dollars"})


def test_a_deadline_set_through_the_api_moves_a_live_project_up_on_the_next_request(projects, annotators):
    cheap = projects.live(items=4, pay_per_micro_task=30)
    rich = projects.live(items=4, pay_per_micro_task=90)
    (ana,) = annotators(1)
    first = ana.next().get_json()
    assert first["project"] == rich
    ana.submit(first)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)).isoformat()
    response = projects.client.patch(f"/api/projects/{cheap}", headers=projects.requester.headers,
                                     json={"deadline": soon})
    assert response.status_code == 200, response.get_json()
    assert ana.next().get_json()["project"] == cheap


def test_the_deadline_window_is_an_operators_setting(app, projects, annotators):
    """A deadline 3 hours away puts a project first with the default window (a day), not with
    DEADLINE_WINDOW_SECONDS at 2 hours."""
    in_three_hours = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).isoformat()
    rich = projects.live(items=4, pay_per_micro_task=90)
    soon = projects.live(items=4, pay_per_micro_task=30, deadline=in_three_hours)
    ana, ben = annotators(2)
    assert ana.next().get_json()["project"] == soon
    app.config["DEADLINE_WINDOW_SECONDS"] = 2 * 3600
    assert ben.next().get_json()["project"] == rich


# --- qualification retakes -----------------------------------------------------------------------


def _qualification_assignments(app, project: int, annotator: int) -> list[tuple[int, str]]:
    with app.app_context():
        rows = db.session.execute(select(Assignment.micro_task_id, Assignment.status).join(MicroTask).where(
            Assignment.project_id == project, Assignment.annotator_id == annotator,
            MicroTask.is_qualification.is_(True)).order_by(Assignment.id)).all()
        db.session.rollback()
    return [tuple(r) for r in rows]


def _qualification_micro_tasks(app, project: int) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count(MicroTask.id)).where(MicroTask.project_id == project,
                                                                     MicroTask.is_qualification.is_(True)))
        db.session.rollback()
    return n


def test_a_skipped_qualification_waits_out_its_cooling_off_even_across_a_redis_loss(app, projects, annotators):
    project = projects.live(items=4, per_task=2, overlap=2, gold=4, qualification=2)
    (ana,) = annotators(1)
    test = ana.next(project).get_json()
    assert test["is_qualification"] is True
    assert ana.skip(test).status_code == 200
    assert ana.next(project).status_code == 204
    assert ana.next().status_code == 204
    with app.app_context():
        redis.client.flushdb()  # the cooling-off is rebuilt from when SQL says the attempt ended
    assert ana.next(project).status_code == 204
    assert _qualification_assignments(app, project, ana.id) == [(test["micro_task"], "skipped")]


def test_the_retake_cooling_off_is_an_operators_setting(app, projects, annotators):
    """With QUALIFICATION_RETAKE_AFTER_SECONDS at an hour, 20 minutes after a skip (past the default
    15) neither the hand-out nor SQL allows a retake; after the hour both do."""
    import time

    from annotate.models import utcnow
    from annotate.services import qualifications

    app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"] = 3600
    project = projects.live(items=4, per_task=2, overlap=2, gold=4, qualification=2)
    (ana,) = annotators(1)
    assert ana.skip(ana.next(project).get_json()).status_code == 200
    skipped, now = time.time(), utcnow()
    assert ana.next(project).status_code == 204
    with app.app_context():
        d = work.dispatcher()
        assert d.next(ana.id, project, now=skipped + 20 * 60).kind == "none"
        assert qualifications.fresh_micro_task(d, ana.id, project, now=now + dt.timedelta(minutes=20)) is None
        assert d.next(ana.id, project, now=skipped + 61 * 60).kind == "fresh"  # she had the only test micro-task
        made = qualifications.fresh_micro_task(d, ana.id, project, now=now + dt.timedelta(minutes=61))
        retake = d.next(ana.id, project, now=skipped + 61 * 60)
        assert (retake.kind, retake.micro_task_id, retake.qualification) == ("new", made, True)
    assert _qualification_micro_tasks(app, project) == 2


def test_a_skipped_or_expired_qualification_is_retaken_on_a_fresh_micro_task(app, projects, annotators):
    from annotate.models import utcnow

    app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"] = 0
    project = projects.live(items=4, per_task=2, overlap=2, gold=4, qualification=2)
    ana, ben = annotators(2)
    first = ana.next(project).get_json()
    ana.skip(first)
    again = ana.next().get_json()  # without a project too: the retake is matched like the first test
    assert again["is_qualification"] is True and again["micro_task"] != first["micro_task"]
    # The fresh micro-task asks the project's next gold items, not the ones already shown.
    assert {i["id"] for i in again["items"]}.isdisjoint({i["id"] for i in first["items"]})
    failed = ana.submit(again, "Negative").get_json()["qualification"]
    assert failed["passed"] is False
    assert ana.next(project).status_code == 204  # a submitted test is never taken again
    with app.app_context():
        redis.client.flushdb()
    assert ana.next(project).status_code == 204
    assert _qualification_assignments(app, project, ana.id) == [(first["micro_task"], "skipped"),
                                                                 (again["micro_task"], "submitted")]

    # Ben lets his test expire; his retake is the micro-task made for Ana's: none is made for him.
    his = ben.next(project).get_json()
    assert his["micro_task"] == first["micro_task"]
    with app.app_context():
        assert work.expire_lease(his["micro_task"], ben.id, now=utcnow() + dt.timedelta(hours=1)) is True
    retake = ben.next(project).get_json()
    assert retake["micro_task"] == again["micro_task"]
    assert _qualification_micro_tasks(app, project) == 2
    assert ben.submit(retake, "Positive").get_json()["qualification"]["passed"] is True
    assert ben.next(project).get_json()["is_qualification"] is False


def test_a_test_that_ran_out_cannot_be_submitted_late_once_it_was_taken_again(app, projects, annotators):
    from annotate.models import utcnow

    app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"] = 0
    project = projects.live(items=4, per_task=2, overlap=2, gold=4, qualification=2)
    ana, ben = annotators(2)
    first = ana.next(project).get_json()
    with app.app_context():
        work.expire_lease(first["micro_task"], ana.id, now=utcnow() + dt.timedelta(hours=1))
    retake = ana.next(project).get_json()
    assert retake["is_qualification"] is True and retake["micro_task"] != first["micro_task"]
    late = ana.submit(first)
    assert late.status_code == 409
    assert "you have taken the test again since: only that attempt counts" in late.get_json()["detail"]
    assert ana.submit(retake).get_json()["qualification"]["passed"] is True
    # Without a retake, a late submit still counts, as for any micro-task whose slot is free.
    his = ben.next(project).get_json()
    with app.app_context():
        work.expire_lease(his["micro_task"], ben.id, now=utcnow() + dt.timedelta(hours=1))
    assert ben.submit(his).get_json()["qualification"]["passed"] is True
    assert [s for _mt, s in _qualification_assignments(app, project, ana.id)] == ["expired", "submitted"]


def test_sql_refuses_a_second_test_to_one_who_submitted_whatever_redis_says(app, projects, annotators):
    app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"] = 0
    project = projects.live(items=4, per_task=2, overlap=2, gold=2, qualification=2)
    ana, ben = annotators(2)
    ana.submit(ana.next(project).get_json(), "Negative")
    ben.skip(ben.next(project).get_json())
    assert ben.next(project).get_json()["is_qualification"] is True  # a second micro-task exists now
    with app.app_context():
        redis.client.srem(f"d:p:{project}:tried", ana.id)  # a stale Redis offers Ana the new one
    assert ana.next(project).status_code == 204
    assert len(_qualification_assignments(app, project, ana.id)) == 1
    assert ana.next(project).status_code == 204  # and Redis knows it again


@pytest.mark.slow
def test_qualification_attempts_hold_under_interleaved_skips_expiries_and_submits(app, projects, people):
    """Never twice on one micro-task, at most one submitted test per annotator, no work after a
    failed one, and every skipped or expired attempt can be retaken (no cooling-off here)."""
    from annotate.models import utcnow

    app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"] = 0
    annotator_ids = [people.make().id for _ in range(3)]

    class Retakes(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            self.project = projects.live(items=8, per_task=2, overlap=3, gold=4, qualification=2)
            self.live: dict[int, dict] = {}
            self.ran_out: dict[int, dict] = {}  # annotator -> their last lease that expired
            self.submitted: dict[int, bool] = {}  # annotator -> passed

        def teardown(self):
            work.pause(projects.requester.person.id, self.project)
            for assignment in db.session.scalars(select(Assignment).where(Assignment.status == "leased")).all():
                work.skip(assignment.annotator_id, assignment.id)
            self.ctx.pop()

        @rule(who=st.integers(0, 2), anywhere=st.booleans())
        def ask(self, who, anywhere):
            annotator = annotator_ids[who]
            try:
                got = work.next_assignment(annotator, None if anywhere else self.project)
            except DomainError:
                got = None
            db.session.rollback()
            if not anywhere and annotator not in self.submitted:
                # Whoever has not submitted a test may take (or retake) one at once: no cooling-off here.
                assert got is not None and got["is_qualification"], got
            if got is None or got["project"] != self.project:
                return
            if got["is_qualification"]:
                assert annotator not in self.submitted, "a second test after a submitted one"
            else:
                assert self.submitted.get(annotator) is True, "regular work without a passed test"
            self.live[annotator] = got

        @rule(who=st.integers(0, 2), right=st.booleans())
        def submit(self, who, right):
            annotator = annotator_ids[who]
            got = self.live.pop(annotator, None)
            if got is None:
                return
            annotations = [{"item_id": i["id"], "result": choice("Positive" if right else "Negative"), "seconds": 1}
                           for i in got["items"]]
            try:
                answer = work.submit(annotator, got["assignment_id"], annotations)
            except DomainError:
                return
            finally:
                db.session.rollback()
            if got["is_qualification"]:
                self.submitted[annotator] = answer["qualification"]["passed"]

        @rule(who=st.integers(0, 2), expire=st.booleans())
        def give_up(self, who, expire):
            annotator = annotator_ids[who]
            got = self.live.pop(annotator, None)
            if got is None:
                return
            if expire:
                work.expire_lease(got["micro_task"], annotator, now=utcnow() + dt.timedelta(hours=1))
                self.ran_out[annotator] = got
            else:
                work.skip(annotator, got["assignment_id"])
            db.session.rollback()

        @rule(who=st.integers(0, 2))
        def submit_late(self, who):
            annotator = annotator_ids[who]
            got = self.ran_out.pop(annotator, None)
            if got is None:
                return
            annotations = [{"item_id": i["id"], "result": choice("Positive"), "seconds": 1} for i in got["items"]]
            try:
                answer = work.submit(annotator, got["assignment_id"], annotations)
            except DomainError:
                return
            finally:
                db.session.rollback()
            if got["is_qualification"]:
                assert annotator not in self.submitted, "a late test counted after another was submitted"
                self.submitted[annotator] = answer["qualification"]["passed"]

        @rule()
        def lose_redis(self):
            redis.client.flushdb()

        @invariant()
        def attempts_hold(self):
            rows = db.session.execute(
                select(Assignment.annotator_id, Assignment.micro_task_id, Assignment.status).join(MicroTask)
                .where(Assignment.project_id == self.project, MicroTask.is_qualification.is_(True))).all()
            db.session.rollback()
            pairs = [(a, mt) for a, mt, _s in rows]
            assert len(pairs) == len(set(pairs)), "an annotator twice on one micro-task"
            for annotator in annotator_ids:
                statuses = [s for a, _mt, s in rows if a == annotator]
                assert statuses.count("submitted") <= 1
                assert statuses.count("leased") + statuses.count("submitted") <= 1

    run_state_machine_as_test(Retakes, settings=settings(
        max_examples=20, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
