"""Leases that run out while the annotator is away, in Chromium.

The page's clock is Playwright's (page.clock), so "away for 35 seconds"
takes no 35 seconds; on the server the lease's end is moved into the past
and the periodic background job's service reclaims it, as the invariant
tests' run_out does. What the page says is checked on the page; what was
stored, through the models.
"""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from annotate.extensions import db, redis
from annotate.models import Assignment
from annotate.services import work as work_service
from tests.browser.test_workbench import WAIT_MS, console_errors, ready, sign_in, stored, text_project

pytestmark = pytest.mark.browser

RAN_OUT = ("Your lease ran out while you were away. Submit now: your work is accepted if nobody else has taken "
           "this micro-task meanwhile; otherwise ask for new work.")


def run_out(app, assignment_id: str) -> None:
    """The lease's time passes on the server, then the periodic background job reclaims it."""
    with app.app_context():
        with db.transaction() as session:
            assignment = session.get(Assignment, int(assignment_id))
            assignment.lease_expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            key = f"{assignment.micro_task_id}:{assignment.annotator_id}"
            if redis.client.zscore("d:leases", key) is not None:
                redis.client.zadd("d:leases", {key: 1})
        assert work_service.reclaim_expired() == 1
        assert db.session.get(Assignment, int(assignment_id)).status == "expired"
        db.session.rollback()


def status_of(app, assignment_id) -> str:
    with app.app_context():
        return db.session.get(Assignment, int(assignment_id)).status


def label_both_and_leave(page, live_server: str, project: int) -> str:
    """Open the project's micro-task, answer its two items with the hotkeys, and stop there."""
    page.goto(f"{live_server}/work?project={project}")
    assignment = ready(page)
    expect(page.locator("#wb-lease-left")).to_have_text("0:30")
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    page.keyboard.press("2")
    return assignment


@pytest.fixture
def away(app, client, teams, run_jobs, people, page, live_server):
    """An annotator on a 30-second lease of a one-micro-task project, on a page whose clock the test moves."""
    app.config["WORKBENCH_IDLE_SECONDS"] = 5
    requester = teams.requester("Shop")
    project = text_project(client, requester, run_jobs, items=["Great value, works well.", "Broke in a day."],
                           overlap=1, lease_seconds=30)
    page.clock.install()
    sign_in(page, live_server, people.make())
    return project


def test_a_lease_that_ran_out_while_away_is_said_and_a_late_submit_is_kept(
        away, app, page, live_server, shoot, people):
    errors = console_errors(page)
    assignment = label_both_and_leave(page, live_server, away)

    # Away: no input for 35 seconds; meanwhile the server reclaims the lease.
    run_out(app, assignment)
    page.clock.fast_forward("00:35")
    expect(page.locator("#wb-lease-left")).to_have_text("0:00")
    message = page.locator("#wb-message")
    expect(message).to_have_text(RAN_OUT)
    expect(page).to_have_title("Lease ran out · Label · Annotate")  # seen from another tab
    shoot(page, "1-lease-ran-out")

    # Back: the first input sends a heartbeat, which the server refuses. The
    # page keeps the answers: nobody took the micro-task, so a submit is accepted.
    with page.expect_response("**/heartbeat") as heartbeat:
        page.mouse.move(400, 300)
    assert heartbeat.value.status == 409
    page.wait_for_timeout(200)  # the page has read the answer
    expect(page.locator("#wb-labeling")).to_be_visible()
    expect(message).to_have_text(RAN_OUT)
    expect(page.locator("#wb-progress")).to_have_text("Item 2 of 2")
    shoot(page, "2-back-answers-kept")

    page.click("text=Submit micro-task")
    expect(page.locator("#wb-idle-title")).to_have_text("No work for you right now", timeout=WAIT_MS)
    expect(page).to_have_title("Label · Annotate")
    assert status_of(app, assignment) == "submitted"
    assert [a.result[0]["value"]["choices"] for a in stored(app, assignment)] == [["Positive"], ["Negative"]]
    assert errors == [] and page.errors == []


def test_a_lease_lost_to_someone_else_is_said_in_words_and_nothing_is_stored(
        away, app, page, live_server, shoot, people):
    errors = console_errors(page)
    assignment = label_both_and_leave(page, live_server, away)

    run_out(app, assignment)
    other = people.make()
    with app.app_context():
        taken = work_service.next_assignment(other.id, away)  # the only slot, now someone else's
    assert taken is not None and taken["assignment_id"] != int(assignment)
    page.clock.fast_forward("00:35")
    expect(page.locator("#wb-message")).to_have_text(RAN_OUT)

    with page.expect_response("**/submit") as submitted:
        page.click("text=Submit micro-task")
    assert submitted.value.status == 409
    expect(page.locator("#wb-idle-title")).to_have_text("Your lease on this micro-task was lost")
    expect(page.locator("#wb-idle-text")).to_have_text(
        "Your lease ran out and the micro-task was given to someone else; your answers were not stored. "
        "Ask for new work to go on.")
    expect(page.locator("#wb-message")).to_be_hidden()
    expect(page.locator("#wb-labeling")).to_be_hidden()
    shoot(page, "1-lease-lost")
    assert status_of(app, assignment) == "expired" and stored(app, assignment) == []
    assert status_of(app, taken["assignment_id"]) == "leased"

    page.click("text=Get new work")
    expect(page.locator("#wb-idle-title")).to_have_text("No work for you right now")
    assert errors == [] and page.errors == []


def test_a_lease_ended_elsewhere_while_the_clock_still_runs_is_said_at_the_next_heartbeat(
        away, app, page, live_server, shoot):
    """Skipped from another tab: the heartbeat's 409 ends the work on this page, in words."""
    errors = console_errors(page)
    assignment = label_both_and_leave(page, live_server, away)
    with app.app_context():
        work_service.skip(db.session.get(Assignment, int(assignment)).annotator_id, int(assignment), "other tab")
    with page.expect_response("**/heartbeat") as heartbeat:
        page.clock.fast_forward("00:11")  # a third of the lease: the next heartbeat is due
        page.mouse.move(300, 300)
    assert heartbeat.value.status == 409
    expect(page.locator("#wb-idle-title")).to_have_text("Your lease on this micro-task was lost")
    expect(page.locator("#wb-idle-text")).to_have_text(
        "You skipped this micro-task. Your answers to it could not be stored; ask for new work to go on.")
    assert errors == [] and page.errors == []
