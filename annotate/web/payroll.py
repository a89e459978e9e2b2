"""Operators' payroll runs: list, close, check, download, mark paid; and an
annotator's own earnings, with what has been paid."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from exports.money import decimal_text

from ..models import utcnow
from ..services import payroll
from ..services.errors import DomainError
from .access import operator_only, signed_in
from .api.payroll import payroll_csv_download

bp = Blueprint("payroll", __name__, url_prefix="/payroll")


@bp.context_processor
def _helpers() -> dict:
    def money(minor: int | None, currency: str) -> str:
        return "" if minor is None else f"{decimal_text(int(minor), currency)} {currency}"

    return {"money": money}


def _list_page(error: DomainError | None = None, period_end: str | None = None):
    now = utcnow()
    page = render_template("payroll/list.html", runs=payroll.list_runs(current_user.id), error=error,
                           preview=payroll.preview(current_user.id, now), now=now,
                           period_end=period_end or "")
    return page, (error.status if error else 200)


@bp.route("/", methods=["GET"])
@operator_only
def run_list():
    return _list_page()


@bp.route("/runs", methods=["POST"])
@operator_only
def close():
    raw = request.form.get("period_end", "").strip()
    try:
        # Left empty, the run closes up to the moment the operator pressed the button.
        period_end = payroll.parse_period_end(raw, assume_utc=True) if raw else utcnow()
        run_id = payroll.close_run(current_user.id, period_end)
    except DomainError as error:
        return _list_page(error, raw)
    flash(f"Payroll run {run_id} closed.")
    return redirect(url_for(".run", run_id=run_id))


@bp.route("/runs/<int:run_id>", methods=["GET"])
@operator_only
def run(run_id: int, error: DomainError | None = None):
    found = payroll.statement(current_user.id, run_id)
    return render_template("payroll/run.html", run=found.run, rows=found.rows, check=found.reconciliation,
                           error=error), (error.status if error else 200)


@bp.route("/runs/<int:run_id>/payroll.csv", methods=["GET"])
@operator_only
def download(run_id: int):
    return payroll_csv_download(run_id)


@bp.route("/runs/<int:run_id>/paid", methods=["POST"])
@operator_only
def mark_paid(run_id: int):
    try:
        payroll.mark_paid(current_user.id, run_id)
    except DomainError as error:
        return run(run_id, error)
    flash(f"Payroll run {run_id} marked paid.")
    return redirect(url_for(".run", run_id=run_id))


@bp.route("/earnings", methods=["GET"])
@signed_in
def earnings():
    return render_template("payroll/earnings.html", found=payroll.earnings(current_user.id))
