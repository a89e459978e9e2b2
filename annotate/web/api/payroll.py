"""Payroll runs through the API, for payment systems (operators only), and
an annotator's own earnings with what has been paid.

Money is in integer minor units of the currency named beside it.
"""
from __future__ import annotations

from flask import Response, jsonify, request, url_for
from flask_login import current_user

from ...models import utcnow
from ...services import payroll
from ...services.errors import Invalid
from ..access import operator_only, signed_in
from . import bp


def _run_body(run) -> dict:
    return {**payroll.run_summary(run),
            "url": url_for("api.payroll_run", run_id=run.id),
            "csv_url": url_for("api.payroll_run_csv", run_id=run.id)}


@bp.route("/payroll/runs/", methods=["GET"])
@bp.route("/payroll/runs", methods=["GET"])
@operator_only
def payroll_runs():
    return jsonify([_run_body(run) for run in payroll.list_runs(current_user.id)])


@bp.route("/payroll/runs/", methods=["POST"])
@bp.route("/payroll/runs", methods=["POST"])
@operator_only
def close_payroll_run():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid('the body must be a JSON object: {"period_end": "2026-01-31T23:59:59Z"}')
    run_id = payroll.close_run(current_user.id, payroll.parse_period_end(body.get("period_end")))
    response = jsonify(payroll.run_json(current_user.id, run_id))
    response.headers["Location"] = url_for("api.payroll_run", run_id=run_id)
    return response, 201


@bp.route("/payroll/preview", methods=["GET"])
@operator_only
def payroll_preview():
    raw = request.args.get("period_end")
    period_end = payroll.parse_period_end(raw) if raw else utcnow()
    return jsonify({"period_end": period_end.isoformat(), "totals": payroll.preview(current_user.id, period_end)})


@bp.route("/payroll/runs/<int:run_id>", methods=["GET"])
@bp.route("/payroll/runs/<int:run_id>/", methods=["GET"])
@operator_only
def payroll_run(run_id: int):
    return jsonify(payroll.run_json(current_user.id, run_id))


def payroll_csv_download(run_id: int) -> Response:
    """A run's payroll CSV as a download: the one response of the API and of the payroll pages."""
    found = payroll.run_csv(current_user.id, run_id)
    return Response(found.content, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{found.filename}"',
                             "X-Content-Type-Options": "nosniff"})


@bp.route("/payroll/runs/<int:run_id>/csv", methods=["GET"])
@operator_only
def payroll_run_csv(run_id: int):
    return payroll_csv_download(run_id)


@bp.route("/payroll/runs/<int:run_id>/paid", methods=["POST"])
@operator_only
def mark_payroll_paid(run_id: int):
    payroll.mark_paid(current_user.id, run_id)
    return jsonify(_run_body(payroll.get_run(current_user.id, run_id)))


@bp.route("/payroll/earnings", methods=["GET"])
@signed_in
def my_earnings():
    found = payroll.earnings(current_user.id)
    return jsonify({
        "totals": found.totals,
        "entries": [{"id": e.id, "created_at": e.created_at.isoformat(), "kind": e.kind, "amount": e.amount,
                     "currency": e.currency, "project": e.project_id, "memo": e.memo, "state": e.state,
                     "payroll_run": e.payroll_run_id, "paid_at": e.paid_at.isoformat() if e.paid_at else None}
                    for e in found.lines],
    })
