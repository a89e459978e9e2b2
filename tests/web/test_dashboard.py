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


def test_open_projects_come_in_order_of_fit_with_pay_rate_and_work_left(client, auth, teams, annotators, run_jobs):
    requester = teams.requester()
    low = live_project(client, requester, run_jobs, title="Low pay", pay=40, items=6)
    high = live_project(client, requester, run_jobs, title="High pay", pay=90, items=4)
    gated = live_project(client, requester, run_jobs, title="Best pay, test first", pay=200, items=4,
                         qualification=2, qualification_pay=10)
    (ada,) = annotators(1)
    auth.login(ada.person)

    listed = section(page_of(client), "projects")
    order = [int(p) for p in re.findall(r'<tr data-project="(\d+)">', listed)]
    assert order == [high, low, gated]  # ready first, then pay per hour; the test-first one last
    # Before any work of hers: the requester's estimate of 60 s per micro-task.
    assert cell(listed, "data-project", high, "rate") == "54.00 USD requester's estimate of 1 min"
    assert cell(listed, "data-project", low, "work-left") == "3 micro-tasks"
    assert cell(listed, "data-project", gated, "qualification").startswith("take the qualification test first")

    # Her own median active time replaces the estimate: 2 items x 3 s = 6 s.
    work = ada.next(low).get_json()
    assert ada.submit(work, seconds=3.0).status_code == 200
    listed = section(page_of(client), "projects")
    assert cell(listed, "data-project", low, "rate") == "240.00 USD your median 6 s over 1 micro-task"
    assert cell(listed, "data-project", low, "work-left") == "2 micro-tasks"
    order = [int(p) for p in re.findall(r'<tr data-project="(\d+)">', listed)]
    assert order == [low, high, gated]

    # Failing the qualification closes the project to her, in words.
    test = ada.next(gated).get_json()
    assert test["is_qualification"]
    assert ada.submit(test, "Negative").get_json()["qualification"]["passed"] is False
    html = page_of(client)
    assert f'<tr data-project="{gated}">' not in section(html, "projects").split("Not open to you")[0]
    assert "Not open to you: Best pay, test first (qualification not passed: 0 of 2 right" in html


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
    order = [int(p) for p in re.findall(r'<tr data-project="(\d+)">', section(html, "projects"))]
    assert order == [gated, plain]


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
