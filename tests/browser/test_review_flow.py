"""The review flow in Chromium: a requester rejects work naming the rule, the
worker appeals, the requester refuses, and an operator grants the appeal,
which pays the worker. Then the operator's charts draw."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from annotate.extensions import db
from annotate.models import Appeal, Assignment, LedgerEntry
from annotate.services import reviews
from tests.conftest import PASSWORD
from tests.web.test_reviews import label_one_micro_task
from tests.work.conftest import annotators, projects  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser
WAIT_MS = 10_000


def sign_in(page, base: str, person) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav")).to_contain_text("API tokens")


def sign_out(page) -> None:
    page.click("button:has-text('Sign out')")


def test_reject_appeal_refuse_and_an_operator_grants(live_server, page, shoot, app, projects, annotators, run_jobs,
                                                     teams):
    done = label_one_micro_task(app, projects, annotators, run_jobs)
    worker = done.workers[2]  # answered Negative where the others said Positive
    assignment_id = done.assignments[worker.id]

    # The requester finds the work in their review queue and looks at it beside the consensus.
    sign_in(page, live_server, done.requester.person)
    page.click("nav >> text=Reviews")
    expect(page.locator("h1")).to_have_text("Reviews")
    page.click("table.review-projects >> text=Sentiment")
    expect(page.locator("h2", has_text="Waiting for review")).to_contain_text("(3)")
    page.click(f"a[href='/reviews/assignments/{assignment_id}']")
    compare = page.locator("table.compare")
    expect(compare.locator("tbody tr")).to_have_count(2)
    expect(compare.locator(".verdict.differ")).to_have_count(2)
    expect(compare).to_contain_text("sentiment: expected Positive, this annotator chose Negative")
    shoot(page, "1-requester-sees-the-answers")

    # A rejection without a rule is refused in words; with one it is stored.
    page.fill("#rule", " ")
    page.fill("#reject-reason", "Both labels contradict the text.")
    page.click("button:has-text('Reject')")
    expect(page.locator("p.error[role=alert]")).to_contain_text("name the rule the rejection rests on")
    expect(page.locator("#reject-reason")).to_have_value("Both labels contradict the text.")
    page.fill("#rule", "random or careless answers")
    page.click("button:has-text('Reject')")
    expect(page.locator(".flash")).to_contain_text(f"Rejected assignment {assignment_id}")
    expect(page.locator("h2", has_text="Waiting for review")).to_contain_text("(2)")
    shoot(page, "2-rejected")

    # The worker appeals (their page calls this service).
    with app.app_context():
        appeal_id = reviews.appeal(worker.id, assignment_id, "The review is sarcastic, so it is negative.")

    page.reload()
    appeals = page.locator("table.appeals")
    expect(appeals).to_contain_text("The review is sarcastic")
    appeals.get_by_role("link", name="Answer").click()
    expect(page.locator("#appeal")).to_contain_text("The worker wrote: The review is sarcastic")
    page.fill("#appeal-response", "The instructions say to label the literal sentiment.")
    page.click("button:has-text('Refuse: send to an operator')")
    expect(page.locator(".flash")).to_contain_text("Appeal refused: it goes to an operator")
    shoot(page, "3-requester-refused-the-appeal")
    sign_out(page)

    # The operator sees it escalated, side by side, and grants it with a reason.
    sign_in(page, live_server, teams.operator)
    page.click("nav >> text=Console")
    expect(page.locator(".counts.overview")).to_contain_text("1 appeals escalated to you")
    page.click(".console-nav >> text=Reviews and appeals")
    escalated = page.locator("table.appeals")
    expect(escalated).to_contain_text("The instructions say to label the literal sentiment.")
    escalated.get_by_role("link", name="Decide").click()
    expect(page.locator("table.compare .verdict.differ")).to_have_count(2)
    expect(page.locator("#appeal .badge")).to_have_text("escalated")
    page.fill("#decision-response", "Sarcasm reads as negative here; the worker is right.")
    shoot(page, "4-operator-decides")
    page.click("button:has-text('Grant: approve and pay')")
    expect(page.locator(".flash")).to_contain_text("Appeal granted")
    expect(page.locator("h2", has_text="Appeals escalated")).to_contain_text("(0)")
    shoot(page, "5-operator-granted")

    with app.app_context():
        row = db.session.get(Assignment, assignment_id)
        assert (row.decision, row.decision_rule) == ("approved", "appeal_granted_by_operator")
        assert row.decision_reason == "Sarcasm reads as negative here; the worker is right."
        assert list(db.session.scalars(select(LedgerEntry.amount).where(
            LedgerEntry.assignment_id == assignment_id, LedgerEntry.kind == "earning"))) == [50]
        assert db.session.get(Appeal, appeal_id).status == "granted"

    # The decision is in the audit log, and the annotator's history shows the approval.
    page.click(".console-nav >> text=Audit log")
    expect(page.locator("table.audit")).to_contain_text("decide_appeal")
    page.select_option("select[name=action]", "decide_appeal")
    page.click("button:has-text('Filter')")
    expect(page.locator("table.audit tbody tr")).to_have_count(1)
    shoot(page, "6-audit-log")
    page.goto(f"{live_server}/console/annotators/{worker.id}")
    expect(page.locator("table.history")).to_contain_text("appeal_granted_by_operator")
    expect(page.locator("table.history .badge.appeal-granted")).to_have_text("granted")

    # The project's charts and the fairness histogram are drawn from the JSON endpoints.
    page.goto(f"{live_server}/console/projects/{done.project_id}")
    expect(page.locator("[data-summary]")).to_contain_text("2 of 2 items done, 6 labels", timeout=WAIT_MS)
    expect(page.locator("[data-chart] svg.chart")).to_have_count(3)
    expect(page.locator("[data-chart=items_done_total] circle")).to_have_count(1)
    shoot(page, "7-project-progress")
    page.goto(f"{live_server}/console/fairness")
    expect(page.locator("[data-histogram=USD] svg rect.bar")).to_have_count(9, timeout=WAIT_MS)
    expect(page.locator("[data-histogram=USD] .floor-label")).to_have_text("pay floor")
    shoot(page, "8-fairness")
    assert page.errors == []
    assert re.search(r"/console/fairness$", page.url)
