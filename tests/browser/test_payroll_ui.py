"""An operator in Chromium: sees what a payroll run would take, closes one,
finds it reconciled, downloads its CSV and finds each annotator's pay in it,
marks it paid; the annotator then sees that money as paid."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.exports.conftest import annotators, projects  # noqa: F401  (fixtures paid_work uses)
from tests.web.test_payroll import paid_work  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav")).to_contain_text("API tokens")


def test_an_operator_closes_a_run_downloads_its_csv_and_marks_it_paid(live_server, page, shoot,
                                                                       paid_work):  # noqa: F811
    work = paid_work(items=4)  # 2 micro-tasks each, at 0.50 USD; -0.10 USD and +1.25 USD; 3.33 EUR
    ada, ben = work["people"]
    sign_in(page, live_server, work["operator"].email)
    page.click("nav >> text=Payroll")
    expect(page.locator("form.panel")).to_contain_text("3.15 USD in 6 entries for 2 annotators")
    expect(page.locator("form.panel")).to_contain_text("3.33 EUR in 1 entry for 1 annotator")
    page.click("button:has-text('Close run')")  # up to now

    expect(page.locator("h1")).to_contain_text("closed")
    expect(page.locator("[data-reconciled]")).to_have_attribute("data-reconciled", "yes")
    expect(page.locator("[data-reconciled]")).to_contain_text("agree to the minor unit")
    shoot(page, "1-closed-and-reconciled")

    with page.expect_download() as info:
        page.click("a:has-text('Download CSV')")
    download = info.value
    assert download.suggested_filename.startswith("payroll-run-") and download.suggested_filename.endswith(".csv")
    content = Path(download.path()).read_bytes()
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    got = {(int(r["annotator_id"]), r["currency"]): r for r in rows}
    assert sorted(got) == sorted([(ada.id, "USD"), (ben.id, "USD"), (ben.id, "EUR")])
    assert (got[ada.id, "USD"]["email"], got[ada.id, "USD"]["approved_micro_tasks"]) == (ada.person.email, "2")
    assert (got[ada.id, "USD"]["base_pay"], got[ada.id, "USD"]["adjustments"], got[ada.id, "USD"]["total"]) == (
        "1.00", "-0.10", "0.90")
    assert (got[ben.id, "USD"]["bonuses"], got[ben.id, "USD"]["total"]) == ("1.25", "2.25")
    assert (got[ben.id, "EUR"]["top_ups"], got[ben.id, "EUR"]["total"]) == ("3.33", "3.33")
    assert sum(int(r["total"].replace(".", "")) for r in rows if r["currency"] == "USD") == 315
    # The same run downloads byte-identical every time.
    with page.expect_download() as again:
        page.click("a:has-text('Download CSV')")
    assert Path(again.value.path()).read_bytes() == content

    page.click("button:has-text('Mark paid')")
    expect(page.locator("p.flash")).to_contain_text("marked paid")
    expect(page.locator("h1 .badge")).to_have_text("paid")
    expect(page.locator("button:has-text('Mark paid')")).to_have_count(0)
    shoot(page, "2-paid")

    page.click("button:has-text('Sign out')")
    sign_in(page, live_server, ben.person.email)
    page.goto(live_server + "/payroll/earnings")
    expect(page.locator('li[data-money="paid"][data-currency="USD"]')).to_contain_text("2.25 USD")
    expect(page.locator('li[data-money="paid"][data-currency="EUR"]')).to_contain_text("3.33 EUR")
    expect(page.locator("tr[data-entry] .status-paid")).to_have_count(4)
    shoot(page, "3-annotator-sees-paid")
    assert page.errors == []
