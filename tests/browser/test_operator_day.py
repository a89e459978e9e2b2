"""An operator's day in Chromium, from the browser alone: watch the queues,
handle a failed background job, block a spammer, settle an appeal, check
fairness and close payroll. After the block and after the appeal, the
annotators' own pages show what changed for them.

The world around the operator (requesters reviewing, workers labeling, an
RQ worker) is played by the services and `run_jobs`, as it would be by other
people and machines that day.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotate.queue import queue
from annotate.services import reviews
from tests.conftest import PASSWORD
from tests.web.test_reviews import label_one_micro_task
from tests.work.conftest import Annotator, annotators, projects  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser
WAIT_MS = 10_000


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav").first).to_contain_text("API tokens")


def test_an_operator_runs_the_platform_for_a_day(live_server, page, chromium, shoot, app, client, projects,
                                                 annotators, run_jobs, teams, people):
    # Overnight: three workers labelled a micro-task; the requester approved two, rejected the third,
    # refused the appeal, and started an export that failed on a misconfigured export folder.
    done = label_one_micro_task(app, projects, annotators, run_jobs)
    good, fine, appealing = done.workers
    requester = done.requester.person.id
    with app.app_context():
        reviews.approve(requester, done.assignments[good.id], "thanks")
        reviews.approve(requester, done.assignments[fine.id], "")
        reviews.reject(requester, done.assignments[appealing.id], "random or careless answers", "Not negative.")
        appeal_id = reviews.appeal(appealing.id, done.assignments[appealing.id], "It is sarcastic: negative.")
        reviews.answer_appeal(requester, appeal_id, False, "Label the literal sentiment.")
    export_root = Path(app.config["EXPORT_ROOT"])
    export_root.parent.mkdir(parents=True, exist_ok=True)
    export_root.write_text("a file where the export folder should be")
    export = client.post(f"/api/projects/{done.project_id}/exports/", headers=done.requester.headers,
                         json={"format": "CSV"}).get_json()
    run_jobs()
    # A spammer holds a lease on a second project.
    second = projects.live(items=4, overlap=1, per_task=2)
    spammer_person = people.make(email="spammer@example.org", name="Spam Bot")
    spammer = Annotator(app, spammer_person)
    assert spammer.next(second).status_code == 200
    operator = teams.operator or people.make("operator")
    teams.operator = operator

    # 1. Morning: the overview, then the queues.
    sign_in(page, live_server, operator.email)
    page.click("nav >> text=Console")
    overview = page.locator(".counts.overview")
    expect(overview).to_contain_text("1 failed background jobs")
    expect(overview).to_contain_text("1 appeals escalated to you")
    expect(overview).to_contain_text("1 live leases")
    shoot(page, "1-overview")
    page.click(".console-nav >> text=Queues")
    waiting = page.locator(f"tr[data-project='{second}']")
    expect(waiting).to_contain_text("Sentiment")
    expect(page.locator("table.leases")).to_contain_text("Spam Bot")
    shoot(page, "2-queues")

    # 2. The failed export: the operator reads the error, the cause is fixed, one retry (a double click).
    page.click(".console-nav >> text=Failed background jobs")
    row = page.locator(f"#job-{export['id']}")
    expect(row).to_contain_text("export")
    expect(row.locator(".job-error")).to_contain_text("NotADirectoryError: [Errno 20] Not a directory")
    expect(row.locator(".rq-retry")).to_have_text("RQ tries it again by itself (3 more times); Retry runs it now")
    shoot(page, "3-failed-export")
    export_root.unlink()
    row.locator("button:has-text('Retry')").dblclick()
    expect(page.locator(".flash").first).to_contain_text(f"Background job {export['id']}")
    with app.app_context():
        assert len(queue().job_ids) == 1  # the double click queued it once
    run_jobs()  # the RQ worker
    page.reload()
    expect(page.locator("main")).to_contain_text("No background job has failed.")
    download = client.get(f"/api/projects/{done.project_id}/exports/{export['id']}/download",
                          headers=done.requester.headers)
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert len(rows) == 6 and {r["text"] for r in rows} == {"item 0", "item 1"}  # 3 answers to each item

    # 3. The spammer: found by name, blocked with a reason; their lease goes back to the queue.
    page.click(".console-nav >> text=Annotators")
    page.fill("input[name=q]", "spam")
    page.press("input[name=q]", "Enter")
    expect(page.locator("table.annotators tbody tr")).to_have_count(1)
    page.click("table.annotators >> text=Spam Bot")
    page.once("dialog", lambda dialog: dialog.accept())
    page.fill("#block-reason", "Submitting random labels at machine speed.")
    page.click("button:has-text('Block')")
    expect(page.locator(".flash").first).to_contain_text("Blocked")
    expect(page.locator("h1 .badge.blocked")).to_have_text("blocked")
    shoot(page, "4-blocked")
    page.click(".console-nav >> text=Queues")
    expect(page.locator("h2", has_text="Live leases")).to_have_text("Live leases (0)")
    expect(page.locator("main")).to_contain_text("Nobody holds a lease.")

    # What the spammer sees: the reason, on the dashboard and when asking for work.
    other = chromium.new_context(viewport={"width": 1280, "height": 900})
    worker_page = other.new_page()
    worker_errors: list[str] = []
    worker_page.on("pageerror", lambda error: worker_errors.append(str(error)))
    sign_in(worker_page, live_server, spammer_person.email)
    worker_page.goto(live_server + "/dashboard")
    expect(worker_page.locator("p.error[role=alert]")).to_contain_text(
        "Your account is blocked: Submitting random labels at machine speed.")
    worker_page.goto(live_server + "/work")
    expect(worker_page.locator("main")).to_contain_text("Submitting random labels at machine speed.", timeout=WAIT_MS)
    shoot(worker_page, "5-spammer-sees-why")
    worker_page.click("button:has-text('Sign out')")

    # 4. The escalated appeal, settled for the worker with a reason.
    page.click(".console-nav >> text=Reviews and appeals")
    page.locator("table.appeals").get_by_role("link", name="Decide").click()
    expect(page.locator("#appeal")).to_contain_text("It is sarcastic: negative.")
    page.fill("#decision-response", "Sarcasm reads as negative here: you were right.")
    page.click("button:has-text('Grant: approve and pay')")
    expect(page.locator(".flash").first).to_contain_text("Appeal granted")
    shoot(page, "6-appeal-granted")

    # What the worker sees: approved, paid, with the operator's words.
    sign_in(worker_page, live_server, appealing.person.email)
    worker_page.goto(live_server + "/dashboard")
    settled = worker_page.locator(f"#assignment-{done.assignments[appealing.id]}")
    expect(settled.locator("[data-field=status]")).to_contain_text("approved")
    expect(settled.locator("[data-field=pay]")).to_contain_text("0.50")
    expect(settled.locator("[data-field=appeal]")).to_contain_text("Appeal granted: the work is approved and paid.")
    expect(settled.locator("[data-field=appeal]")).to_contain_text(
        "Operator: “Sarcasm reads as negative here: you were right.”")
    shoot(worker_page, "7-worker-sees-the-appeal-settled")

    # 5. Fairness: rates against the floor, the spread of work, rejections per requester.
    page.click(".console-nav >> text=Fairness")
    expect(page.locator("[data-histogram=USD] svg rect.bar")).to_have_count(9, timeout=WAIT_MS)
    expect(page.locator("[data-gini]")).to_have_text("0.00")  # three workers, one micro-task each
    expect(page.locator("section.rates[data-currency=USD]")).to_contain_text("of 3 annotators below the floor")
    # One rejection of three decisions, appealed and overturned: the requester's row says so.
    expect(page.locator(f"tr[data-requester='{requester}'] td")).to_have_text(
        ["Test Person", "3", "1", "33%", "1", "1"])
    shoot(page, "8-fairness")

    # 6. Payroll: three approved micro-tasks at 0.50 USD, closed, reconciled, paid.
    page.click(".console-nav >> text=Payroll")
    expect(page.locator("form.panel")).to_contain_text("1.50 USD in 3 entries for 3 annotators")
    page.click("button:has-text('Close run')")
    expect(page.locator("[data-reconciled]")).to_have_attribute("data-reconciled", "yes")
    for worker in done.workers:
        expect(page.locator(f"tr[data-annotator='{worker.id}'] td.total")).to_have_text("0.50 USD")
    expect(page.locator("tr[data-annotator]")).to_have_count(3)
    page.click("button:has-text('Mark paid')")
    expect(page.locator("h1 .badge")).to_have_text("paid")
    shoot(page, "9-payroll-paid")
    worker_page.goto(live_server + "/payroll/earnings")
    expect(worker_page.locator('li[data-money="paid"][data-currency="USD"]')).to_contain_text("0.50 USD")
    other.close()
    assert page.errors == [] and worker_errors == []
    assert re.search(r"/payroll/runs/\d+$", page.url)
