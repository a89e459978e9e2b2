"""The annotator's dashboard: open projects in order of fit with pay and
hourly rate, earnings pending/approved/paid from the ledger, quality in plain
words, the history of every assignment and appealing a rejection from the page.

State is built the way it happens: requesters create projects through the
API, annotators work through the work API, and background jobs score and pay.
"""
from __future__ import annotations

import html as entities
import re

import pytest

from annotate.extensions import db
from annotate.models import AnnotatorScore, Assignment, LedgerEntry, utcnow
from annotate.services import earnings, payroll, reviews
from tests.conftest import TEXT_CONFIG, choice
from tests.work.conftest import Annotator, Projects


@pytest.fixture
def projects(client, teams, run_jobs) -> Projects:
    return Projects(client, teams, run_jobs)


@pytest.fixture
def annotators(app, people):
    def make(n: int = 1) -> list[Annotator]:
        return [Annotator(app, people.make()) for _ in range(n)]

    return make


def live_project(client, requester, run_jobs, *, title: str, pay: int, items: int = 4, per_task: int = 2,
                 overlap: int = 2, estimate: int | None = 60, qualification: int = 0, currency: str = "USD",
                 qualification_pay: int = 0) -> int:
    """A live text project made through the requester's API."""
    headers = requester.headers
    body = {"title": title, "label_config": TEXT_CONFIG, "overlap": overlap, "items_per_micro_task": per_task,
            "pay_per_micro_task": pay, "currency": currency, "qualification_gold_count": qualification,
            "qualification_min_accuracy": 0.5, "qualification_pay": qualification_pay}
    if estimate:
        body["estimated_seconds_per_micro_task"] = estimate
    project = client.post("/api/projects/", headers=headers, json=body)
    assert project.status_code == 201, project.get_json()
    project_id = project.get_json()["id"]
    tasks = [{"data": {"text": f"{title} item {i}"}} for i in range(items)]
    assert client.post(f"/api/projects/{project_id}/import", headers=headers, json=tasks).status_code == 201
    if qualification:
        gold = [{"data": {"text": f"{title} gold {i}"}, "annotations": [{"result": choice("Positive")}]}
                for i in range(qualification)]
        assert client.post(f"/api/projects/{project_id}/import?gold=1", headers=headers, json=gold).status_code == 201
    published = client.post(f"/api/projects/{project_id}/publish", headers=headers)
    assert published.status_code == 200, published.get_json()
    run_jobs()
    return project_id


def page_of(client, path: str = "/dashboard") -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def cell(html: str, attribute: str, value, field: str) -> str:
    """The text of the <td data-field=field> in the element carrying attribute=value."""
    row = re.search(rf'<(?:tr|li|article)[^>]*{attribute}="{value}"[^>]*>(.*?)</(?:tr|article)>', html, re.S)
    assert row, f"no row with {attribute}={value}"
    found = re.search(rf'data-field="{field}"[^>]*>(.*?)</(?:td|span)>', row.group(1), re.S)
    assert found, f"no {field} in the row {attribute}={value}"
    return entities.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip())


def section(html: str, name: str) -> str:
    """The <section id=name> of a page."""
    found = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert found, f"no section {name}"
    return found.group(1)


def money_card(html: str, state: str, currency: str = "USD") -> str:
    found = re.search(rf'data-money="{state}" data-currency="{currency}"><strong>([^<]+)</strong>', html)
    assert found, f"no {state} total in {currency}"
    return found.group(1)


# --- access ----------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in ("/dashboard", "/dashboard/history"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=/dashboard")
    assert client.post("/dashboard/appeals/1", data={"reason": "x"}).status_code == 302


def test_an_annotator_sees_only_their_own_work_and_money(client, auth, projects, annotators, run_jobs):
    project = projects.live(items=8, per_task=4, overlap=2)
    ada, bob = annotators(2)
    for annotator in (ada, bob):
        work = annotator.next(project).get_json()
        assert annotator.submit(work).status_code == 200
    extra = ada.next(project).get_json()
    ada.skip(extra, "the text is in a language I do not read")
    run_jobs()

    auth.login(bob.person)
    html = page_of(client)
    history = page_of(client, "/dashboard/history")
    with client.application.app_context():
        ada_rows = db.session.query(Assignment.id).filter_by(annotator_id=ada.id).all()
    for (assignment_id,) in ada_rows:
        assert f'id="assignment-{assignment_id}"' not in history
    assert "language I do not read" not in history
    assert history.count('<tr id="assignment-') == 1
    assert money_card(html, "approved") == "0.50 USD"  # bob's one approved micro-task, not ada's too


def test_appealing_someone_elses_rejection_is_not_found_and_creates_nothing(client, auth, projects, annotators):
    project = projects.live(items=4, per_task=2, overlap=2)
    ada, bob = annotators(2)
    work = ada.next(project).get_json()
    ada.submit(work)
    with client.application.app_context():
        reviews.reject(projects.requester.person.id, work["assignment_id"], "wrong_language", "not English")
    auth.login(bob.person)
    response = client.post(f"/dashboard/appeals/{work['assignment_id']}", data={"reason": "please"})
    assert response.status_code == 404
    assert f"no assignment {work['assignment_id']}" in response.get_data(as_text=True)
    with client.application.app_context():
        assert reviews.open_appeals(projects.requester.person.id, project) == []


# --- earnings -----------------------------------------------------------------------


def test_earnings_pending_approved_and_paid_match_the_ledger(client, auth, projects, annotators, run_jobs, app,
                                                            teams):
    # Pays 50 (USD cents) per micro-task; two annotators agreeing on 4 items score
    # 0.75, above the 0.70 at which scoring approves and pays on its own.
    project = projects.live(items=12, per_task=4, overlap=2)
    ada, bob = annotators(2)
    for annotator in (ada, bob):  # both finish the first micro-task: scored, approved, paid
        assert annotator.submit(annotator.next(project).get_json()).status_code == 200
    second = ada.next(project).get_json()
    assert ada.submit(second).status_code == 200  # waits for a second annotator: pending
    run_jobs()

    auth.login(ada.person)
    html = page_of(client)
    with app.app_context():
        ledger = db.session.query(LedgerEntry).filter_by(annotator_id=ada.id).all()
        pending = db.session.query(Assignment).filter_by(annotator_id=ada.id, decision="pending").count()
    assert sum(e.amount for e in ledger) == 50 and pending == 1
    assert money_card(html, "pending") == "0.50 USD"
    assert money_card(html, "approved") == "0.50 USD"
    assert money_card(html, "paid") == "0.00 USD"
    assert cell(section(html, "earnings"), "data-project", project, "pending") == "0.50 USD"
    assert cell(section(html, "earnings"), "data-project", project, "approved") == "0.50 USD"
    week = earnings.iso_week(utcnow())
    assert cell(html, "data-week", week, "pending") == "0.50 USD"
    assert cell(html, "data-week", week, "approved") == "0.50 USD"

    # An operator closes a payroll run over the entry: still approved, not paid, until the run is paid.
    with app.app_context():
        run = payroll.close_run(teams.operator.id, utcnow())
    html = page_of(client)
    assert money_card(html, "approved") == "0.50 USD"
    with app.app_context():
        payroll.mark_paid(teams.operator.id, run)
    html = page_of(client)
    assert money_card(html, "approved") == "0.00 USD"
    assert money_card(html, "paid") == "0.50 USD"
    assert cell(section(html, "earnings"), "data-project", project, "paid") == "0.50 USD"


def test_money_is_formatted_per_currency(client, auth, teams, annotators, run_jobs, app):
    app.config["PAY_FLOORS"] = "USD:1200,JPY:1500"
    requester = teams.requester()
    project = live_project(client, requester, run_jobs, title="Yen work", pay=120, currency="JPY", overlap=2)
    (ada,) = annotators(1)
    ada.submit(ada.next(project).get_json())
    auth.login(ada.person)
    html = page_of(client)
    assert money_card(html, "pending", "JPY") == "120 JPY"
    assert cell(section(html, "projects"), "data-project", project, "pay") == "120 JPY 2 items"


# --- open projects --------------------------------------------------------------------


def listed_order(html: str) -> list[int]:
    """The projects open to the annotator, in the order the page lists them."""
    if '<section id="projects">' in html:
        html = section(html, "projects")
    return [int(p) for p in re.findall(r'<tr data-project="(\d+)">', html)]


def closed_item(html: str, project: int) -> tuple[str, str]:
    """The why and how-to-qualify of a project listed as not open to the annotator."""
    found = re.search(rf'<li data-project="{project}">(.*?)</li>', section(html, "projects"), re.S)
    assert found, f"project {project} is not listed as closed"
    parts = {}
    for field in ("why", "how"):
        text = re.search(rf'data-field="{field}">(.*?)</(?:span|small)>', found.group(1), re.S).group(1)
        parts[field] = entities.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip())
    return parts["why"], parts["how"]


def test_open_projects_come_in_order_of_fit_with_pay_rate_and_work_left(client, auth, teams, annotators, run_jobs):
    requester = teams.requester()
    low = live_project(client, requester, run_jobs, title="Low pay", pay=40, items=6)
    high = live_project(client, requester, run_jobs, title="High pay", pay=90, items=4)
    gated = live_project(client, requester, run_jobs, title="Best pay, test first", pay=200, items=4,
                         qualification=2, qualification_pay=10)
    ada, bob = annotators(2)
    auth.login(ada.person)

    listed = section(page_of(client), "projects")
    assert listed_order(listed) == [high, low, gated]  # pay per hour; the test-first one after the ready ones
    # Before any scored work: the requester's estimate of 60 s per micro-task.
    assert cell(listed, "data-project", high, "rate") == "54.00 USD about 1 min a micro-task: the requester's estimate"
    assert cell(listed, "data-project", low, "work-left") == "3 micro-tasks"
    assert cell(listed, "data-project", gated, "qualification").startswith("take the qualification test first")

    # Once her work is scored, her pace on text classification counts: 2 items x 3 s = 6 s
    # against the 60 s estimate is a tenth of the usual time, so 10 times the hourly rate,
    # on every text project (the order stays).
    for annotator in (ada, bob):
        assert annotator.submit(annotator.next(low).get_json(), seconds=3.0).status_code == 200
    run_jobs()
    listed = section(page_of(client), "projects")
    assert cell(listed, "data-project", low, "rate") == (
        "240.00 USD about 6 s a micro-task: your pace on text classification over 1 scored micro-task")
    assert cell(listed, "data-project", high, "rate").startswith("540.00 USD about 6 s")
    assert cell(listed, "data-project", low, "work-left") == "2 micro-tasks"
    assert listed_order(listed) == [high, low, gated]

    # Failing the qualification closes the project to her, in words.
    test = ada.next(gated).get_json()
    assert test["is_qualification"]
    assert ada.submit(test, "Negative").get_json()["qualification"]["passed"] is False
    html = page_of(client)
    assert gated not in listed_order(html)
    why, _how = closed_item(html, gated)
    assert why.startswith("qualification not passed: 0 of 2 right, needed")


def test_the_page_lists_projects_in_the_order_next_hands_out_work(client, auth, teams, annotators, run_jobs, app):
    from annotate.extensions import redis
    from annotate.services import skills

    requester = teams.requester()
    # Hand-computed rates at the usual pace (pay x 3600 / estimated seconds), in cents an hour:
    slow = live_project(client, requester, run_jobs, title="Slow", pay=60, estimate=60, items=2)        # 3,600
    strict = live_project(client, requester, run_jobs, title="Strict", pay=50, estimate=30, items=2)    # 6,000
    easy = live_project(client, requester, run_jobs, title="Easy", pay=50, estimate=30, items=2)        # 6,000
    urgent = live_project(client, requester, run_jobs, title="Urgent", pay=25, estimate=60, items=2)    # 1,500
    with app.app_context():
        operator = teams.operator.id
        medical = skills.create_skill(requester.person.id, "Medical terms").id
        skills.set_project_skills(requester.person.id, strict, [{"skill_id": medical, "min_level": 40}])
        work_service_update(requester.person.id, urgent, {"priority": 5})
        kind = next(s.id for s in skills.list_skills() if s.config_kind == "text_classification")
    (ada,) = annotators(1)
    with app.app_context():
        skills.adjust_level(operator, ada.id, medical, 90, "passed the medical vocabulary test")
        skills.adjust_level(operator, ada.id, kind, 70, "years of sentiment work elsewhere")

    # Priority first, whatever it pays; Strict and Easy pay the same, and Easy leaves her
    # more slack above its minimums (70 in text classification) than Strict (90 - 40 = 50).
    auth.login(ada.person)
    html = section(page_of(client), "projects")
    expected = [urgent, easy, strict, slow]
    assert listed_order(html) == expected
    assert cell(html, "data-project", strict, "skills") == "Medical terms 90 (minimum 40), Text classification 70"
    assert cell(html, "data-project", easy, "rate").startswith("60.00 USD about 30 s a micro-task")
    assert cell(html, "data-project", urgent, "priority") == "priority 5"

    # `next` without a project hands out work in that order, also from a state rebuilt from SQL.
    with app.app_context():
        redis.client.flushdb()
    handed = []
    for _ in expected:
        work = ada.next().get_json()
        handed.append(work["project"])
        assert ada.submit(work).status_code == 200
    assert handed == expected
    assert ada.next().status_code == 204


def work_service_update(user_id: int, project_id: int, raw: dict) -> None:
    from annotate.services import work

    work.update_project(user_id, project_id, raw)


def test_projects_closed_to_the_annotator_say_which_rule_and_how_to_qualify(client, auth, teams, annotators,
                                                                           run_jobs, app):
    from annotate.services import skills

    requester = teams.requester()
    german = live_project(client, requester, run_jobs, title="German reviews", pay=50)
    gory = live_project(client, requester, run_jobs, title="Crime reports", pay=50)
    expert = live_project(client, requester, run_jobs, title="Radiology notes", pay=50)
    capped = live_project(client, requester, run_jobs, title="Many voices", pay=50, items=8, overlap=1)
    with app.app_context():
        work_service_update(requester.person.id, german, {"required_languages": ["de"]})
        work_service_update(requester.person.id, gory, {"content_categories": ["violence"]})
        work_service_update(requester.person.id, capped, {"max_share_per_annotator": 0.25})  # 1 of 4
        medical = skills.create_skill(requester.person.id, "Medical terms").id
        skills.set_project_skills(requester.person.id, expert, [{"skill_id": medical, "min_level": 60}])
    (ada,) = annotators(1)
    ada.profile(languages=[{"code": "en", "level": "native"}], opted_out_categories=["violence"])
    with app.app_context():
        skills.adjust_level(teams.operator.id, ada.id, medical, 45, "a short course only")
    assert ada.submit(ada.next(capped).get_json()).status_code == 200

    auth.login(ada.person)
    html = page_of(client)
    assert listed_order(html) == []
    assert closed_item(html, german) == ("it needs de, which your profile does not list",
                                         "Declare de on your profile if you read it.")
    assert closed_item(html, gory)[0] == "it shows violence content, which you opted out of"
    why, how = closed_item(html, expert)
    assert why == "Medical terms: your level 45, the minimum 60"
    assert how.startswith("Raise Medical terms to 60 with good work on projects that use it")
    assert closed_item(html, capped)[0] == "you took 1 of the 1 micro-tasks one annotator may take"
    # And the queue agrees: nothing for her anywhere.
    assert ada.next().status_code == 204

    ada.profile(languages=[{"code": "en", "level": "native"}, {"code": "de", "level": "fluent"}])
    html = page_of(client)
    assert listed_order(html) == [german]
    assert ada.next().get_json()["project"] == german

    with app.app_context():
        from annotate.services import work

        work.block(teams.operator.id, ada.id, "payments under review")
    why, how = closed_item(page_of(client), german)
    assert why == "your account is blocked: payments under review"


def test_passing_the_qualification_puts_the_project_with_the_ready_ones(client, auth, teams, annotators, run_jobs):
    requester = teams.requester()
    plain = live_project(client, requester, run_jobs, title="Plain", pay=40)
    gated = live_project(client, requester, run_jobs, title="Gated", pay=200, qualification=2)
    (ada,) = annotators(1)
    test = ada.next(gated).get_json()
    assert ada.submit(test, "Positive").get_json()["qualification"]["passed"] is True
    auth.login(ada.person)
    html = page_of(client)
    assert cell(section(html, "projects"), "data-project", gated, "qualification") == "passed"
    assert listed_order(html) == [gated, plain]


# --- quality ----------------------------------------------------------------------------


def test_quality_is_shown_with_the_numbers_behind_it(client, auth, projects, annotators, run_jobs, app):
    project = projects.live(items=4, per_task=4, overlap=2, gold=2, gold_share=0.5)
    ada, bob = annotators(2)
    for annotator in (ada, bob):
        assert annotator.submit(annotator.next(project).get_json(), "Positive").status_code == 200
    run_jobs()
    with app.app_context():
        score = db.session.query(AnnotatorScore).filter_by(annotator_id=ada.id, project_id=project).one()
        right, total, n_items, quality = score.gold_right, score.gold_total, score.n_items, score.quality
    assert total >= 1
    auth.login(ada.person)
    html = page_of(client)
    card = re.search(rf'<article class="quality-card" data-project="{project}">(.*?)</article>', html, re.S).group(1)
    assert f"{quality:.2f}" in card
    assert f"You got {right} of {total} gold items right." in card
    assert "matched the consensus of the other annotators on" in card
    assert f"{n_items} items counted" in card
    assert "approves work on its own at quality 0.70 or above" in card


# --- history and appeals ------------------------------------------------------------------


def test_history_lists_every_assignment_with_status_pay_and_reasons(client, auth, projects, annotators, run_jobs):
    project = projects.live(items=12, per_task=4, overlap=2)
    ada, bob = annotators(2)
    first = ada.next(project).get_json()
    ada.submit(first)
    bob.submit(bob.next(project).get_json())
    skipped = ada.next(project).get_json()
    ada.skip(skipped, "Content I do not want to see")
    pending = ada.next(project).get_json()
    ada.submit(pending)
    run_jobs()

    auth.login(ada.person)
    html = page_of(client, "/dashboard/history")
    assert "3 in all" in html
    assert cell(html, "id", f"assignment-{first['assignment_id']}", "status") == "approved"
    assert cell(html, "id", f"assignment-{first['assignment_id']}", "pay") == "0.50 USD"
    assert cell(html, "id", f"assignment-{skipped['assignment_id']}", "status") == "skipped"
    assert cell(html, "id", f"assignment-{skipped['assignment_id']}", "pay") == "none"
    assert "You said: “Content I do not want to see”" in html
    assert cell(html, "id", f"assignment-{pending['assignment_id']}", "status") == "pending"
    assert cell(html, "id", f"assignment-{pending['assignment_id']}", "pay") == "0.50 USD if approved"
    # Newest first.
    ids = [int(i) for i in re.findall(r'<tr id="assignment-(\d+)"', html)]
    assert ids == sorted(ids, reverse=True)


def test_a_rejection_shows_its_rule_and_reason_and_can_be_appealed_from_the_page(
        client, auth, projects, annotators, app):
    project = projects.live(items=4, per_task=2, overlap=2)
    (ada,) = annotators(1)
    work = ada.next(project).get_json()
    ada.submit(work)
    requester = projects.requester.person.id
    with app.app_context():
        reviews.reject(requester, work["assignment_id"], "wrong_language", "the answers ignore the instructions")

    auth.login(ada.person)
    row = f"assignment-{work['assignment_id']}"
    html = page_of(client)
    assert cell(html, "id", row, "status") == "rejected"
    assert "Rejected under rule wrong_language." in html and "the answers ignore the instructions" in html
    assert f'action="/dashboard/appeals/{work["assignment_id"]}' in html

    # An empty reason is refused in words, on the page, with nothing stored.
    response = client.post(f"/dashboard/appeals/{work['assignment_id']}", data={"reason": "  "})
    assert response.status_code == 400
    assert "Your appeal was not sent: say why the rejection is wrong" in response.get_data(as_text=True)
    with app.app_context():
        assert reviews.open_appeals(requester, project) == []

    response = client.post(f"/dashboard/appeals/{work['assignment_id']}",
                           data={"reason": "Every item was English; see item 2."})
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your appeal against the rejection of assignment" in html
    assert cell(html, "id", row, "appeal").startswith("Appealed: waiting for the project's requesters")
    assert f'action="/dashboard/appeals/{work["assignment_id"]}' not in html  # no second appeal
    with app.app_context():
        appeals = reviews.open_appeals(requester, project)
    assert [(a["assignment_id"], a["reason"]) for a in appeals] == [
        (work["assignment_id"], "Every item was English; see item 2.")]

    # The requester refuses; the worker sees it goes to an operator, with the answer.
    with app.app_context():
        reviews.answer_appeal(requester, appeals[0]["appeal_id"], False, "item 2 is Spanish")
    html = page_of(client, "/dashboard/history")
    assert cell(html, "id", row, "appeal").startswith(
        "Appealed: the requesters refused, an operator decides next. Requester: “item 2 is Spanish”")

    # A second appeal is refused in words.
    response = client.post(f"/dashboard/appeals/{work['assignment_id']}", data={"reason": "again"})
    assert response.status_code == 409
    assert "you appealed this rejection already" in response.get_data(as_text=True)


def test_history_pages(client, auth, teams, annotators, run_jobs, app, monkeypatch):
    from annotate.services import history

    monkeypatch.setattr(history, "PER_PAGE", 2)
    requester = teams.requester()
    project = live_project(client, requester, run_jobs, title="Many", pay=40, items=10, overlap=1)
    (ada,) = annotators(1)
    for _ in range(5):
        assert ada.submit(ada.next(project).get_json()).status_code == 200
    auth.login(ada.person)
    first = page_of(client, "/dashboard/history")
    assert "Page 1 of 3" in first and first.count('<tr id="assignment-') == 2
    last = page_of(client, "/dashboard/history?page=3")
    assert "Page 3 of 3" in last and last.count('<tr id="assignment-') == 1
    assert "Page 3 of 3" in page_of(client, "/dashboard/history?page=99")


# --- deadlines, currencies and retakes in the order ---------------------------------------


def projects_with_deadlines(client, app, requester, run_jobs, *wanted) -> list[int]:
    """Live projects of 2 items, each from (title, pay, time left to its deadline or None)."""
    import datetime as dt

    made = []
    for title, pay, left in wanted:
        project = live_project(client, requester, run_jobs, title=title, pay=pay, items=2)
        if left is not None:
            with app.app_context():
                deadline = (dt.datetime.now(dt.UTC) + left).isoformat()
                work_service_update(requester.person.id, project, {"deadline": deadline})
        made.append(project)
    return made


def handed_out(annotator: Annotator, times: int) -> list[int]:
    """The projects `next` without a project hands out work from, each lease submitted."""
    handed = []
    for _ in range(times):
        work = annotator.next().get_json()
        handed.append(work["project"])
        annotator.submit(work)
    return handed


def deadline_words(html: str, project: int) -> str:
    """What a project's row says of its deadline."""
    row = re.search(rf'<tr data-project="{project}">.*?</tr>', html, re.S).group(0)
    deadline = re.search(r'data-field="deadline">(.*?)</small>', row, re.S).group(1)
    return entities.unescape(re.sub(r"\s+", " ", deadline))


def test_a_project_due_soon_is_listed_first_and_says_why(client, auth, teams, annotators, run_jobs, app):
    import datetime as dt

    from annotate.extensions import redis

    rich, later, due = projects_with_deadlines(
        client, app, teams.requester(), run_jobs, ("Rich", 90, None), ("Later", 60, dt.timedelta(days=3)),
        ("Due", 30, dt.timedelta(hours=5, minutes=30)))
    (ada,) = annotators(1)
    auth.login(ada.person)
    html = section(page_of(client), "projects")
    expected = [due, rich, later]  # due within a day first; a deadline 3 days away does not count yet
    assert listed_order(html) == expected
    assert cell(html, "data-project", due, "due") == "due soon"
    words = deadline_words(html, due)
    assert re.fullmatch(r"due \d{4}-\d\d-\d\d \d\d:\d\d UTC, in 5 h (29|30) min: it has work left and is due "
                        r"within a day, so it comes before better-paid work", words), words
    assert 'data-field="due"' not in re.search(rf'<tr data-project="{later}">.*?</tr>', html, re.S).group(0)
    with app.app_context():
        redis.client.flushdb()  # the deadline is rebuilt from SQL like the rest
    assert handed_out(ada, len(expected)) == expected


def test_the_deadline_window_is_the_operators_setting(client, auth, teams, annotators, run_jobs, app):
    """With DEADLINE_WINDOW_SECONDS at 2 hours, a deadline 3 hours away no longer ranks first (it
    would with the default day), one an hour away does, and the page says 2 hours."""
    import datetime as dt

    app.config["DEADLINE_WINDOW_SECONDS"] = 2 * 3600
    rich, in_three_hours, in_an_hour = projects_with_deadlines(
        client, app, teams.requester(), run_jobs, ("Rich", 90, None), ("Three hours", 60, dt.timedelta(hours=3)),
        ("An hour", 30, dt.timedelta(hours=1)))
    (ada,) = annotators(1)
    auth.login(ada.person)
    html = section(page_of(client), "projects")
    expected = [in_an_hour, rich, in_three_hours]
    assert listed_order(html) == expected
    assert "then projects due within 2 hours (the nearest deadline first)" in html
    assert deadline_words(html, in_an_hour).endswith(
        "it has work left and is due within 2 hours, so it comes before better-paid work")
    assert re.fullmatch(r"due \S+ \S+ UTC, in 2 h 5\d min", deadline_words(html, in_three_hours))
    assert handed_out(ada, len(expected)) == expected


def test_rates_in_other_currencies_are_compared_in_the_ranking_currency_and_shown_in_their_own(
        client, auth, teams, annotators, run_jobs, app):
    app.config["PAY_FLOORS"] = "USD:1200,EUR:1100,GBP:1000"
    app.config["RANKING_EXCHANGE_RATES"] = {"EUR": "1.10"}
    requester = teams.requester()
    # An hour at 60 s a micro-task: 3,600 US cents; 3,480 euro cents = 3,828 US cents; GBP has no rate.
    usd = live_project(client, requester, run_jobs, title="Dollars", pay=60, items=2)
    eur = live_project(client, requester, run_jobs, title="Euros", pay=58, items=2, currency="EUR")
    gbp = live_project(client, requester, run_jobs, title="Pounds", pay=90, items=2, currency="GBP")
    (ada,) = annotators(1)
    auth.login(ada.person)
    html = section(page_of(client), "projects")
    assert listed_order(html) == [eur, usd, gbp]
    assert cell(html, "data-project", eur, "pay") == "0.58 EUR 2 items"  # pay stays in its currency
    rate = cell(html, "data-project", eur, "rate")
    assert rate.startswith("34.80 EUR about 1 min a micro-task") and rate.endswith("compared as about 38.28 USD")
    assert cell(html, "data-project", gbp, "rate").endswith(
        "no exchange rate to USD is set for GBP: ranked after projects whose rate can be compared")
    assert [ada.next().get_json()["project"]] == [eur]


@pytest.mark.parametrize("cooling_off, minutes", [(None, 15), (3600, 60)], ids=["default", "an hour"])
def test_a_qualification_left_unfinished_says_when_it_can_be_taken_again(client, auth, teams, annotators,
                                                                         run_jobs, app, cooling_off, minutes):
    """After the operators' cooling-off (QUALIFICATION_RETAKE_AFTER_SECONDS, 15 minutes by default)."""
    import datetime as dt

    if cooling_off is not None:
        app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"] = cooling_off
    requester = teams.requester()
    gated = live_project(client, requester, run_jobs, title="Gated", pay=200, qualification=2)
    (ada,) = annotators(1)
    test = ada.next(gated).get_json()
    before = dt.datetime.now(dt.UTC)
    ada.skip(test)
    auth.login(ada.person)
    why, how = closed_item(page_of(client), gated)
    assert why == "you left its qualification test unfinished"
    when = re.fullmatch(r"Take the test again from (\S+ \S+) UTC, on a fresh micro-task\.", how).group(1)
    opens = dt.datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
    assert (dt.timedelta(minutes=minutes - 1) <= opens - before.replace(second=0, microsecond=0)
            <= dt.timedelta(minutes=minutes + 1))
    assert ada.next().status_code == 204  # the queue agrees

    app.config["QUALIFICATION_RETAKE_AFTER_SECONDS"] = 0  # as if the cooling-off were over
    html = section(page_of(client), "projects")
    assert listed_order(html) == [gated]
    assert cell(html, "data-project", gated, "qualification") == (
        "take the qualification test first you may take it again, on a fresh micro-task")
    assert ada.next().get_json()["is_qualification"] is True  # the queue agrees again
