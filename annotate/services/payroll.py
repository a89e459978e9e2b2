"""Payroll runs: an operator closes a pay period, downloads it, marks it paid.

`close_run` takes, in one transaction, every approved ledger entry not yet
in a run and created up to the period end:

    UPDATE ledger_entry SET payroll_run_id = :run
    WHERE payroll_run_id IS NULL AND created_at <= :period_end AND <approved>

On PostgreSQL the transaction first takes a transaction-scoped advisory
lock, so two operators closing at the same moment close one after the
other; the `payroll_run_id IS NULL` guard would keep an entry out of a
second run even without it (a concurrent UPDATE waits for the row lock and
then re-checks the condition). On SQLite the write transaction is already
exclusive. The run's totals are read back from the entries it took, in the
same transaction.

The payroll file (`exports.payroll`) has one row per annotator and currency;
`reconciliation` checks the rows against the ledger and the totals kept at
closing, to the minor unit. Marking a run paid is audited; annotators then
see its entries as paid (`earnings`).
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, cast, exists, func, or_, select, text, update

from exports import payroll as payroll_file

from ..extensions import db
from ..models import Assignment, LedgerEntry, PayrollRun, User, utcnow
from . import audit
from .accounts import require_operator
from .earnings import summary as earnings_summary
from .errors import Conflict, Invalid, NotFound

# pg_advisory_xact_lock key: one payroll closing at a time across the cluster.
PAYROLL_LOCK = 7_301_001


def parse_period_end(value: Any, *, assume_utc: bool = False) -> dt.datetime:
    """An ISO 8601 time with its zone ("2026-01-31T23:59:59Z"); a web form's
    local time is UTC when `assume_utc`."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Invalid(f"period_end must be an ISO 8601 time such as 2026-01-31T23:59:59Z, not {value!r}",
                          field="period_end") from None
    else:
        raise Invalid("period_end is required: the time up to which approved work is paid", field="period_end")
    if moment.tzinfo is None:
        if not assume_utc:
            raise Invalid("period_end must carry its time zone, e.g. 2026-01-31T23:59:59Z", field="period_end")
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _approved():
    # Money tied to an assignment is paid only while that assignment stands approved.
    return or_(LedgerEntry.assignment_id.is_(None),
               exists().where(Assignment.id == LedgerEntry.assignment_id, Assignment.decision == "approved"))


def _unpaid_until(period_end: dt.datetime):
    return (LedgerEntry.payroll_run_id.is_(None), LedgerEntry.created_at <= period_end, _approved())


def _sums(session, *where) -> dict[str, dict[str, int]]:
    """Per currency: entries, annotators, amount, and the amount of each kind."""
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(select(LedgerEntry.currency, LedgerEntry.kind, func.count(LedgerEntry.id),
                                  func.sum(LedgerEntry.amount))
                           .where(*where).group_by(LedgerEntry.currency, LedgerEntry.kind))
    for currency, kind, count, amount in rows:
        sums = out.setdefault(currency, {"entries": 0, "annotators": 0, "amount": 0,
                                         **{k: 0 for k in payroll_file.KINDS}})
        sums["entries"] += int(count)
        sums["amount"] += int(amount or 0)
        sums[kind] += int(amount or 0)
    people = session.execute(select(LedgerEntry.currency, func.count(func.distinct(LedgerEntry.annotator_id)))
                             .where(*where).group_by(LedgerEntry.currency))
    for currency, count in people:
        out[currency]["annotators"] = int(count)
    return dict(sorted(out.items()))


def preview(actor_id: int, period_end: dt.datetime) -> dict[str, dict[str, int]]:
    """What closing a run up to `period_end` would take now, per currency."""
    session = db.session
    require_operator(session, actor_id)
    sums = _sums(session, *_unpaid_until(period_end))
    session.rollback()
    return sums


def close_run(actor_id: int, period_end: dt.datetime) -> int:
    """Close a payroll run over every approved, unpaid ledger entry up to `period_end`."""
    if period_end.tzinfo is None:
        raise Invalid("period_end must carry its time zone", field="period_end")
    if period_end > utcnow():
        raise Invalid("period_end is in the future: a run pays work that is already approved", field="period_end")
    with db.transaction() as session:
        require_operator(session, actor_id)
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PAYROLL_LOCK})
        run = PayrollRun(period_end=period_end, status="closed", created_by_id=actor_id, totals={})
        session.add(run)
        session.flush()
        taken = session.execute(update(LedgerEntry).where(*_unpaid_until(period_end))
                                .values(payroll_run_id=run.id)
                                .execution_options(synchronize_session=False)).rowcount
        if not taken:
            raise Conflict(f"there is no approved, unpaid ledger entry up to {period_end:%Y-%m-%d %H:%M:%S} UTC")
        run.totals = _sums(session, LedgerEntry.payroll_run_id == run.id)
        audit.record(session, actor_id=actor_id, action="close_payroll_run", target_type="payroll_run",
                     target_id=run.id, period_end=period_end.isoformat(), totals=run.totals)
        return run.id


def list_runs(actor_id: int) -> list[PayrollRun]:
    session = db.session
    require_operator(session, actor_id)
    return list(session.scalars(select(PayrollRun).order_by(PayrollRun.id.desc())))


def get_run(actor_id: int, run_id: int) -> PayrollRun:
    session = db.session
    require_operator(session, actor_id)
    run = session.get(PayrollRun, run_id)
    if run is None:
        raise NotFound(f"no payroll run {run_id}")
    return run


def _rows(session, run_id: int) -> list[payroll_file.PayrollRow]:
    money = [payroll_file.MoneyLine(a, c, k, int(s or 0), int(n)) for a, c, k, s, n in session.execute(
        select(LedgerEntry.annotator_id, LedgerEntry.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount),
               func.count(LedgerEntry.id))
        .where(LedgerEntry.payroll_run_id == run_id)
        .group_by(LedgerEntry.annotator_id, LedgerEntry.currency, LedgerEntry.kind))]
    # Whole milliseconds summed as integers: the same total whatever order the database adds them in.
    active_ms = func.sum(cast(func.round(Assignment.active_seconds * 1000), BigInteger))
    work = [payroll_file.WorkLine(a, c, int(n), int(ms or 0)) for a, c, n, ms in session.execute(
        select(LedgerEntry.annotator_id, LedgerEntry.currency, func.count(func.distinct(LedgerEntry.assignment_id)),
               active_ms)
        .join(Assignment, Assignment.id == LedgerEntry.assignment_id)
        .where(LedgerEntry.payroll_run_id == run_id, LedgerEntry.kind == "earning")
        .group_by(LedgerEntry.annotator_id, LedgerEntry.currency))]
    ids = {line.annotator_id for line in money}
    people = {i: payroll_file.Person(i, n, e) for i, n, e in session.execute(
        select(User.id, User.name, User.email).where(User.id.in_(ids)))} if ids else {}
    return payroll_file.payroll_rows(money, work, people)


@dataclass(frozen=True)
class Statement:
    """A run with its rows and the reconciliation of their totals."""

    run: PayrollRun
    rows: list[payroll_file.PayrollRow]
    reconciliation: dict[str, Any]


def _reconcile(session, run: PayrollRun, rows: list[payroll_file.PayrollRow]) -> dict[str, Any]:
    ledger = _sums(session, LedgerEntry.payroll_run_id == run.id)
    from_rows = payroll_file.totals(rows)
    closed = run.totals or {}
    currencies = {}
    for currency in sorted(set(ledger) | set(from_rows) | set(closed)):
        led, row, kept = ledger.get(currency, {}), from_rows.get(currency, {}), closed.get(currency, {})
        amounts = {"ledger": led.get("amount", 0), "rows": row.get("total", 0), "at_closing": kept.get("amount", 0)}
        entries = {"ledger": led.get("entries", 0), "rows": row.get("entries", 0),
                   "at_closing": kept.get("entries", 0)}
        by_kind = {kind: {"ledger": led.get(kind, 0), "at_closing": kept.get(kind, 0)} for kind in payroll_file.KINDS}
        ok = (len(set(amounts.values())) == 1 and len(set(entries.values())) == 1
              and all(v["ledger"] == v["at_closing"] for v in by_kind.values()))
        currencies[currency] = {"amount": amounts, "entries": entries, "by_kind": by_kind, "ok": ok}
    return {"ok": all(c["ok"] for c in currencies.values()), "currencies": currencies}


def statement(actor_id: int, run_id: int) -> Statement:
    run = get_run(actor_id, run_id)
    session = db.session
    rows = _rows(session, run_id)
    return Statement(run, rows, _reconcile(session, run, rows))


@dataclass(frozen=True)
class PayrollCsv:
    filename: str
    content: bytes


def run_csv(actor_id: int, run_id: int) -> PayrollCsv:
    """The payroll CSV of a run and the name to download it under: the same bytes every time."""
    run = get_run(actor_id, run_id)
    out = io.StringIO(newline="")
    payroll_file.write_csv(_rows(db.session, run_id), out)
    return PayrollCsv(f"payroll-run-{run.id}-{run.period_end:%Y%m%dT%H%M%SZ}.csv", out.getvalue().encode("utf-8"))


def run_json(actor_id: int, run_id: int) -> dict[str, Any]:
    """The run for payment systems: money in integer minor units of each row's currency."""
    found = statement(actor_id, run_id)
    return {**run_summary(found.run), "rows": [payroll_file.row_json(r) for r in found.rows],
            "row_totals": payroll_file.totals(found.rows), "reconciliation": found.reconciliation}


def run_summary(run: PayrollRun) -> dict[str, Any]:
    return {"id": run.id, "period_end": run.period_end.isoformat(), "status": run.status,
            "created_at": run.created_at.isoformat(), "created_by": run.created_by_id,
            "paid_at": run.paid_at.isoformat() if run.paid_at else None, "paid_by": run.paid_by_id,
            "totals": run.totals}


def mark_paid(actor_id: int, run_id: int) -> None:
    with db.transaction() as session:
        require_operator(session, actor_id)
        run = session.get(PayrollRun, run_id, with_for_update=True)
        if run is None:
            raise NotFound(f"no payroll run {run_id}")
        if run.status == "paid":
            raise Conflict(f"payroll run {run_id} was marked paid on {run.paid_at:%Y-%m-%d %H:%M} UTC already")
        run.status, run.paid_at, run.paid_by_id = "paid", utcnow(), actor_id
        audit.record(session, actor_id=actor_id, action="mark_payroll_paid", target_type="payroll_run",
                     target_id=run_id, totals=run.totals)


# --- what annotators see -------------------------------------------------------------------------

# The words of annotate.services.earnings (the dashboard), with a closed run told apart.
PAY_STATES = ("approved", "in_payroll", "paid")


@dataclass(frozen=True)
class EarningLine:
    id: int
    created_at: dt.datetime
    kind: str
    amount: int
    currency: str
    project_id: int | None
    memo: str
    state: str  # approved (in no run yet) | in_payroll (in a closed run, not paid yet) | paid
    payroll_run_id: int | None
    paid_at: dt.datetime | None


@dataclass(frozen=True)
class Earnings:
    lines: list[EarningLine]
    totals: dict[str, dict[str, int]]  # currency -> state -> amount
    summary: dict[str, Any]  # the dashboard's: pending, approved and paid by project and week


def earnings(user_id: int, limit: int = 200) -> Earnings:
    """An annotator's own ledger entries, newest first, each approved (in no run yet), in a
    closed payroll run, or paid; with the dashboard's summary of the same money."""
    summary = earnings_summary(user_id)
    session = db.session
    state = (select(LedgerEntry, PayrollRun.status, PayrollRun.paid_at)
             .outerjoin(PayrollRun, PayrollRun.id == LedgerEntry.payroll_run_id)
             .where(LedgerEntry.annotator_id == user_id))
    lines = []
    for entry, run_status, paid_at in session.execute(
            state.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc()).limit(limit)):
        lines.append(EarningLine(entry.id, entry.created_at, entry.kind, entry.amount, entry.currency,
                                 entry.project_id, entry.memo, _state(run_status), entry.payroll_run_id, paid_at))
    totals: dict[str, dict[str, int]] = {}
    for currency, run_status, amount in session.execute(
            select(LedgerEntry.currency, PayrollRun.status, func.sum(LedgerEntry.amount))
            .outerjoin(PayrollRun, PayrollRun.id == LedgerEntry.payroll_run_id)
            .where(LedgerEntry.annotator_id == user_id).group_by(LedgerEntry.currency, PayrollRun.status)):
        sums = totals.setdefault(currency, dict.fromkeys(PAY_STATES, 0))
        sums[_state(run_status)] += int(amount or 0)
    return Earnings(lines, dict(sorted(totals.items())), summary)


def _state(run_status: str | None) -> str:
    return "approved" if run_status is None else ("paid" if run_status == "paid" else "in_payroll")
