"""Operators close payroll runs, check and download them, mark them paid;
annotators then see their earnings as paid."""
from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time

import pytest
from sqlalchemy import func, select

from annotate.extensions import db
from annotate.models import AuditEntry, LedgerEntry, PayrollRun
from annotate.services import accounts, pay, payroll
from tests.conftest import Person
from tests.exports.conftest import annotators, label_all, projects  # noqa: F401  (fixtures)


@pytest.fixture
def paid_work(projects, annotators, run_jobs, client, app):  # noqa: F811
    """Two annotators' approved work on a USD project (50 cents a micro-task), plus money of the other kinds."""

    def make(items: int = 6) -> dict:
        project_id = projects.live(items=items, overlap=2, per_task=2)
        headers = projects.requester.headers
        client.patch(f"/api/projects/{project_id}/", headers=headers, json={"approve_quality_threshold": 0.0})
        people = annotators(2)
        label_all(people, project_id)
        run_jobs()
        with app.app_context(), db.transaction() as session:
            first, second = people[0].id, people[1].id
            pay.add_entry(session, key=f"adjustment:test:{first}", annotator_id=first, kind="adjustment",
                          amount=-10, currency="USD", memo="correction")
            pay.add_entry(session, key=f"bonus:test:{second}", annotator_id=second, kind="bonus", amount=125,
                          currency="USD", memo="weekend bonus")
            pay.add_entry(session, key=f"top_up:test:{second}", annotator_id=second, kind="top_up", amount=333,
                          currency="EUR", memo="other project")
        return {"project_id": project_id, "people": people, "operator": projects.teams.operator}

    return make


def ledger_total(app) -> dict[str, int]:
    with app.app_context():
        return dict(db.session.execute(select(LedgerEntry.currency, func.sum(LedgerEntry.amount))
                                       .group_by(LedgerEntry.currency)).all())


def operator_headers(app, operator: Person) -> dict:
    with app.app_context():
        return {"Authorization": f"Token {accounts.create_token(operator.id, 'payroll').key}"}


def test_an_operator_closes_checks_downloads_and_pays_a_run(client, auth, app, paid_work):
    work = paid_work()
    totals = ledger_total(app)
    assert totals["USD"] == 6 * 50 - 10 + 125 and totals["EUR"] == 333
    auth.login(work["operator"])
    listing = client.get("/payroll/").get_data(as_text=True)
    assert "4.15 USD in 8 entries for 2 annotators" in listing and "3.33 EUR in 1 entry for 1 annotator;" in listing
    future = client.post("/payroll/runs", data={"period_end": "2999-01-01T00:00"})
    assert future.status_code == 400 and "in the future" in future.get_data(as_text=True)
    closed = client.post("/payroll/runs", data={"period_end": ""})  # up to now
    assert closed.status_code == 302
    run_id = int(closed.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/payroll/runs/{run_id}").get_data(as_text=True)
    assert 'data-reconciled="yes"' in page and "4.15 USD" in page

    first = client.get(f"/payroll/runs/{run_id}/payroll.csv")
    second = client.get(f"/api/payroll/runs/{run_id}/csv", headers=operator_headers(app, work["operator"]))
    assert first.status_code == 200 and first.mimetype == "text/csv"
    assert first.get_data() == second.get_data()  # byte-identical, every time
    rows = list(csv.DictReader(io.StringIO(first.get_data(as_text=True))))
    assert [(int(r["annotator_id"]), r["currency"]) for r in rows] == sorted(
        [(work["people"][0].id, "USD"), (work["people"][1].id, "USD"), (work["people"][1].id, "EUR")],
        key=lambda key: (key[1], key[0]))
    by_key = {(int(r["annotator_id"]), r["currency"]): r for r in rows}
    ana = by_key[(work["people"][0].id, "USD")]
    assert (ana["approved_micro_tasks"], ana["base_pay"], ana["adjustments"], ana["total"]) == ("3", "1.50", "-0.10",
                                                                                                "1.40")
    assert ana["active_hours"] == "0.01" and ana["effective_hourly_rate"] == "210.00"  # 1.40 for 24 s of work
    ben = by_key[(work["people"][1].id, "USD")]
    assert (ben["bonuses"], ben["total"]) == ("1.25", "2.75")
    cents = sum(int(r["total"].replace(".", "")) for r in rows if r["currency"] == "USD")
    assert cents == totals["USD"]  # to the cent

    api = client.get(f"/api/payroll/runs/{run_id}", headers=operator_headers(app, work["operator"])).get_json()
    assert api["reconciliation"]["ok"] and api["totals"]["USD"]["amount"] == totals["USD"]
    assert sum(r["total"] for r in api["rows"] if r["currency"] == "EUR") == 333

    annotator = work["people"][1]
    before = annotator.client.get("/api/payroll/earnings", headers=annotator.headers).get_json()
    assert {e["state"] for e in before["entries"]} == {"in_payroll"}
    assert client.post(f"/payroll/runs/{run_id}/paid").status_code == 302
    after = annotator.client.get("/api/payroll/earnings", headers=annotator.headers).get_json()
    assert {e["state"] for e in after["entries"]} == {"paid"}
    assert after["totals"]["USD"] == {"approved": 0, "in_payroll": 0, "paid": 3 * 50 + 125}
    statement = annotator.client.get("/payroll/earnings", headers=annotator.headers).get_data(as_text=True)
    assert "status-paid" in statement and "not yet in a payroll run" not in statement and "2.75 USD" in statement
    again = client.post(f"/payroll/runs/{run_id}/paid")
    assert again.status_code == 409 and "already" in again.get_data(as_text=True)
    assert client.get(f"/payroll/runs/{run_id}/payroll.csv").get_data() == first.get_data()
    with app.app_context():
        actions = [a.action for a in db.session.scalars(select(AuditEntry).where(
            AuditEntry.target_type == "payroll_run", AuditEntry.target_id == run_id).order_by(AuditEntry.id))]
        assert actions == ["close_payroll_run", "mark_payroll_paid"]


def earnings_tables(html: str) -> str:
    start = html.index('<ul class="counts money">')
    # The dashboard then links to the earnings page.
    return html[start:html.index("</section>", start)].split('<p><a href="/payroll/earnings">')[0].strip()


def test_the_earnings_page_shows_the_dashboard_s_earnings_tables_and_each_entry_s_payroll_state(
        client, app, paid_work):
    work = paid_work(items=4)
    annotator = work["people"][1]
    with app.app_context():
        run_id = payroll.close_run(work["operator"].id, dt.datetime.now(dt.UTC))
    page = annotator.client.get("/payroll/earnings", headers=annotator.headers).get_data(as_text=True)
    dashboard = annotator.client.get("/dashboard", headers=annotator.headers).get_data(as_text=True)
    # One partial: the same tables, to the character, on both pages.
    assert earnings_tables(page) == earnings_tables(dashboard)
    usd = '<li data-money="approved" data-currency="USD"><strong>2.25 USD</strong>'  # 2 micro-tasks + the bonus
    assert usd in page and '<li data-money="paid" data-currency="EUR"><strong>0.00 EUR</strong>' in page
    assert page.count(f"in payroll run {run_id}") == 4 and "not yet in a payroll run" not in page
    with app.app_context():
        payroll.mark_paid(work["operator"].id, run_id)
    page = annotator.client.get("/payroll/earnings", headers=annotator.headers).get_data(as_text=True)
    assert '<li data-money="paid" data-currency="USD"><strong>2.25 USD</strong>' in page
    assert '<li data-money="paid" data-currency="EUR"><strong>3.33 EUR</strong>' in page
    assert page.count("status-paid") == 4


def test_entries_after_the_period_end_wait_for_the_next_run(client, app, paid_work):
    work = paid_work(items=4)
    headers = operator_headers(app, work["operator"])
    cut = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    with app.app_context(), db.transaction() as session:
        pay.add_entry(session, key="adjustment:late", annotator_id=work["people"][0].id, kind="adjustment",
                      amount=7, currency="USD", memo="late")
    first = client.post("/api/payroll/runs/", headers=headers, json={"period_end": cut.isoformat()})
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["totals"]["USD"]["amount"] == 4 * 50 - 10 + 125
    nothing = client.post("/api/payroll/runs/", headers=headers, json={"period_end": cut.isoformat()})
    assert nothing.status_code == 409 and "no approved, unpaid ledger entry" in nothing.get_json()["detail"]
    second = client.post("/api/payroll/runs/", headers=headers,
                         json={"period_end": dt.datetime.now(dt.UTC).isoformat()}).get_json()
    assert second["totals"] == {"USD": {"entries": 1, "annotators": 1, "amount": 7, "earning": 0, "bonus": 0,
                                        "top_up": 0, "adjustment": 7}}
    runs = client.get("/api/payroll/runs/", headers=headers).get_json()
    assert [r["id"] for r in runs] == [second["id"], first.get_json()["id"]]


@pytest.mark.parametrize("value,words", [
    ("2026-01-31T23:59:59", "time zone"),
    ("yesterday", "ISO 8601"),
    ("2999-01-01T00:00:00Z", "in the future"),
    (None, "required"),
])
def test_a_bad_period_end_is_refused_in_words(client, app, paid_work, value, words):
    work = paid_work(items=2)
    response = client.post("/api/payroll/runs/", headers=operator_headers(app, work["operator"]),
                           json={"period_end": value})
    assert response.status_code == 400 and words in response.get_json()["detail"]


def test_payroll_is_for_operators_only(client, auth, app, paid_work, people, teams):
    work = paid_work(items=2)
    with app.app_context():
        run_id = payroll.close_run(work["operator"].id, dt.datetime.now(dt.UTC))
    requester = teams.requester()
    annotator = work["people"][0]
    api = [("GET", "/api/payroll/runs/"), ("POST", "/api/payroll/runs/"), ("GET", f"/api/payroll/runs/{run_id}"),
           ("GET", f"/api/payroll/runs/{run_id}/csv"), ("POST", f"/api/payroll/runs/{run_id}/paid"),
           ("GET", "/api/payroll/preview")]
    for method, path in api:
        for headers in (requester.headers, annotator.headers):
            response = client.open(path, method=method, headers=headers, json={"period_end": "2020-01-01T00:00:00Z"})
            assert response.status_code == 403, path
            assert "Payroll" not in response.get_data(as_text=True)
        assert client.open(path, method=method).status_code == 401
    auth.login(people.make("requester"))
    for method, path in [("GET", "/payroll/"), ("POST", "/payroll/runs"), ("GET", f"/payroll/runs/{run_id}"),
                         ("GET", f"/payroll/runs/{run_id}/payroll.csv"), ("POST", f"/payroll/runs/{run_id}/paid")]:
        assert client.open(path, method=method, data={"period_end": "2020-01-01T00:00"}).status_code == 403, path
    assert 'href="/payroll/"' not in client.get("/projects/").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(PayrollRun, run_id).status == "closed"


def test_two_operators_closing_at_the_same_moment_never_pay_an_entry_twice(app, paid_work, people, monkeypatch):
    work = paid_work(items=8)
    second_operator = people.make("operator")
    all_headers = [operator_headers(app, work["operator"]), operator_headers(app, second_operator)]
    sums = payroll._sums

    def slow_sums(session, *where):
        # Widen the window between taking the entries and reading them back.
        time.sleep(0.2)
        return sums(session, *where)

    monkeypatch.setattr(payroll, "_sums", slow_sums)
    expected = ledger_total(app)
    answers: list = []
    for round_ in range(3):
        with app.app_context(), db.transaction() as session:
            for person in work["people"]:
                pay.add_entry(session, key=f"adjustment:round:{round_}:{person.id}", annotator_id=person.id,
                              kind="adjustment", amount=round_ + 1, currency="USD")
        expected = ledger_total(app)
        barrier = threading.Barrier(len(all_headers) * 2)
        period_end = dt.datetime.now(dt.UTC).isoformat()

        def close(headers):
            client = app.test_client()
            barrier.wait()
            answers.append(client.post("/api/payroll/runs/", headers=headers, json={"period_end": period_end}))

        threads = [threading.Thread(target=close, args=(h,)) for h in all_headers * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert {a.status_code for a in answers} <= {201, 409}
    closed = [a.get_json() for a in answers if a.status_code == 201]
    assert len(closed) >= 3
    with app.app_context():
        unpaid = db.session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.payroll_run_id.is_(None)))
        assert unpaid == 0
        entries = db.session.scalar(select(func.count(LedgerEntry.id)))
        runs = db.session.scalars(select(PayrollRun)).all()
        # Each run's totals were read back from the entries it took: they add up to the ledger, once.
        assert sum(t["entries"] for r in runs for t in r.totals.values()) == entries
        assert {c: sum(r.totals.get(c, {}).get("amount", 0) for r in runs) for c in expected} == expected
        for run in runs:
            assert payroll.statement(work["operator"].id, run.id).reconciliation["ok"]
