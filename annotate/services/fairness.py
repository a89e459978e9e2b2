"""Fairness measures for operators: effective hourly pay against the floor,
how work is spread across annotators, and who rejects work.

`gini` and `top_share` are pure functions of numbers. The effective hourly
rate is money in the ledger over the active time of decided work: rejected
work counts its time and no money, so a rule that rejects a lot shows up as
a low rate. Pending work counts neither until it is decided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import func, select

from ..extensions import db
from ..models import Appeal, Assignment, AuditEntry, LedgerEntry, Project, User
from .accounts import require_operator
from .pay import pay_floors

# Rate histogram edges, as multiples of the currency's pay floor.
RATE_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, math.inf)


def gini(values: Iterable[float]) -> float:
    """The Gini coefficient of non-negative amounts: 0 when all are equal,
    (n - 1) / n when one holds everything. Empty or all-zero gives 0."""
    x = np.sort(np.asarray(list(values), dtype=np.float64))
    if x.size == 0:
        return 0.0
    if (x < 0).any():
        raise ValueError("the Gini coefficient is defined for non-negative amounts")
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.size
    rank = np.arange(1, n + 1)
    return float(2.0 * (rank * x).sum() / (n * total) - (n + 1) / n)


def top_share(values: Iterable[float], fraction: float = 0.1) -> float:
    """The share of the total held by the top `fraction` of holders (at least one holder)."""
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    x = np.sort(np.asarray(list(values), dtype=np.float64))[::-1]
    total = x.sum()
    if x.size == 0 or total == 0:
        return 0.0
    k = max(1, math.ceil(x.size * fraction - 1e-9))
    return float(x[:k].sum() / total)


def rate_per_hour(earned_minor: int, seconds: float) -> int | None:
    """Minor units per hour, rounded down; None without measured time."""
    if seconds <= 0:
        return None
    return int(earned_minor * 3600 // seconds)


@dataclass(frozen=True)
class RateRow:
    annotator_id: int
    project_id: int
    currency: str
    seconds: float  # active time of decided (approved or rejected) work
    decided: int
    earned: int  # every ledger entry of the annotator on the project


def effective_rates(annotator_ids: Sequence[int] | None = None) -> list[RateRow]:
    """Time and money per annotator and project, for effective hourly rates."""
    session = db.session
    work = (select(Assignment.annotator_id, Assignment.project_id, func.sum(Assignment.active_seconds),
                   func.count(Assignment.id))
            .where(Assignment.status == "submitted", Assignment.decision.in_(("approved", "rejected")))
            .group_by(Assignment.annotator_id, Assignment.project_id))
    money = (select(LedgerEntry.annotator_id, LedgerEntry.project_id, func.sum(LedgerEntry.amount))
             .where(LedgerEntry.project_id.is_not(None))
             .group_by(LedgerEntry.annotator_id, LedgerEntry.project_id))
    if annotator_ids is not None:
        work = work.where(Assignment.annotator_id.in_(annotator_ids))
        money = money.where(LedgerEntry.annotator_id.in_(annotator_ids))
    time_by = {(a, p): (float(s or 0), int(n)) for a, p, s, n in session.execute(work)}
    money_by = {(a, p): int(m or 0) for a, p, m in session.execute(money)}
    keys = set(time_by) | set(money_by)
    currency = dict(session.execute(select(Project.id, Project.currency)
                                    .where(Project.id.in_({p for _, p in keys}))).all()) if keys else {}
    return [RateRow(a, p, currency[p], *time_by.get((a, p), (0.0, 0)), money_by.get((a, p), 0))
            for a, p in sorted(keys)]


def _histogram(rates: list[int], floor: int | None) -> list[dict[str, Any]]:
    if not floor:
        return []
    bins = []
    for low, high in zip(RATE_BINS, RATE_BINS[1:]):
        lo, hi = int(low * floor), (None if math.isinf(high) else int(high * floor))
        count = sum(1 for r in rates if r >= lo and (hi is None or r < hi))
        bins.append({"low": lo, "high": hi, "count": count, "below_floor": high <= 1.0})
    return bins


def report(operator_id: int) -> dict[str, Any]:
    """Everything the fairness page and its charts show."""
    session = db.session
    require_operator(session, operator_id)
    floors = pay_floors()
    rows = effective_rates()
    names = dict(session.execute(select(User.id, User.name)).all())
    titles = dict(session.execute(select(Project.id, Project.title)).all())

    # Annotators, per currency.
    per_annotator: dict[tuple[int, str], list[float]] = {}
    for r in rows:
        acc = per_annotator.setdefault((r.annotator_id, r.currency), [0.0, 0])
        acc[0] += r.seconds
        acc[1] += r.earned
    currencies: dict[str, dict[str, Any]] = {}
    for (annotator_id, currency), (seconds, earned) in sorted(per_annotator.items()):
        rate = rate_per_hour(int(earned), seconds)
        if rate is None:
            continue
        entry = currencies.setdefault(currency, {"currency": currency, "floor": floors.get(currency),
                                                 "annotators": []})
        entry["annotators"].append({"annotator_id": annotator_id, "name": names.get(annotator_id, ""),
                                    "seconds": round(seconds, 1), "earned": int(earned), "rate": rate})
    for entry in currencies.values():
        rates = [a["rate"] for a in entry["annotators"]]
        entry["annotators"].sort(key=lambda a: (a["rate"], a["annotator_id"]))
        floor = entry["floor"]
        entry["below_floor"] = sum(1 for r in rates if floor is not None and r < floor)
        entry["median_rate"] = int(np.median(rates)) if rates else None
        entry["histogram"] = _histogram(rates, floor)

    # Projects.
    per_project: dict[int, dict[str, Any]] = {}
    for r in rows:
        p = per_project.setdefault(r.project_id, {"project_id": r.project_id, "title": titles.get(r.project_id, ""),
                                                  "currency": r.currency, "floor": floors.get(r.currency),
                                                  "seconds": 0.0, "earned": 0, "rates": []})
        p["seconds"] += r.seconds
        p["earned"] += r.earned
        rate = rate_per_hour(r.earned, r.seconds)
        if rate is not None:
            p["rates"].append(rate)
    projects = []
    for p in per_project.values():
        rates = p.pop("rates")
        p["seconds"] = round(p["seconds"], 1)
        p["rate"] = rate_per_hour(p["earned"], p["seconds"])
        p["annotators"] = len(rates)
        p["median_rate"] = int(np.median(rates)) if rates else None
        p["below_floor"] = sum(1 for r in rates if p["floor"] is not None and r < p["floor"])
        projects.append(p)
    projects.sort(key=lambda p: (p["rate"] is None, p["rate"] or 0, p["project_id"]))

    # How work is spread: submitted assignments and money per annotator.
    submissions = dict(session.execute(select(Assignment.annotator_id, func.count(Assignment.id))
                                       .where(Assignment.status == "submitted").group_by(Assignment.annotator_id)).all())
    earnings = dict(session.execute(select(LedgerEntry.annotator_id, func.sum(LedgerEntry.amount))
                                    .group_by(LedgerEntry.annotator_id)).all())
    counts = list(submissions.values())
    # Everyone who worked counts, those who earned nothing too.
    amounts = [max(0, int(earnings.get(a) or 0)) for a in set(submissions) | set(earnings)]
    spread = {
        "annotators": len(counts), "submissions": sum(counts),
        "top_10_percent": max(1, math.ceil(len(counts) * 0.1 - 1e-9)) if counts else 0,
        "top_10_share": top_share(counts), "gini": gini(counts),
        "earnings_top_10_share": top_share(amounts), "earnings_gini": gini(amounts),
        "busiest": [{"annotator_id": a, "name": names.get(a, ""), "submissions": n}
                    for a, n in sorted(submissions.items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
    }
    out = {"floors": floors, "currencies": sorted(currencies.values(), key=lambda c: c["currency"]),
           "projects": projects, "work": spread, **_rejections(session, names, titles)}
    session.rollback()
    return out


def _rejections(session, names: dict[int, str], titles: dict[int, str]) -> dict[str, Any]:
    """Rejections per requester, rule and project, from the audit log of review decisions."""
    decisions = session.execute(
        select(AuditEntry.actor_id, AuditEntry.action, AuditEntry.target_id, AuditEntry.details)
        .where(AuditEntry.action.in_(("approve_assignment", "reject_assignment")),
               AuditEntry.target_type == "assignment")).all()
    rejected = {target: (actor, (details or {}).get("rule", "")) for actor, action, target, details in decisions
                if action == "reject_assignment"}
    appeals = dict(session.execute(select(Appeal.assignment_id, Appeal.status)
                                   .where(Appeal.assignment_id.in_(list(rejected) or [0]))).all())
    project_of = dict(session.execute(select(Assignment.id, Assignment.project_id)
                                      .where(Assignment.id.in_(list(rejected) or [0]))).all())
    requesters: dict[int, dict[str, Any]] = {}
    for actor, action, _target, _details in decisions:
        r = requesters.setdefault(actor, {"requester_id": actor, "name": names.get(actor, ""), "decisions": 0,
                                          "rejected": 0, "appealed": 0, "overturned": 0})
        r["decisions"] += 1
    rules: dict[str, dict[str, Any]] = {}
    by_project: dict[int, dict[str, Any]] = {}
    for target, (actor, rule) in rejected.items():
        status = appeals.get(target)
        overturned = status == "granted"
        for acc in (requesters[actor],
                    rules.setdefault(rule, {"rule": rule, "rejected": 0, "appealed": 0, "overturned": 0}),
                    by_project.setdefault(project_of.get(target), {
                        "project_id": project_of.get(target), "title": titles.get(project_of.get(target), ""),
                        "rejected": 0, "appealed": 0, "overturned": 0})):
            acc["rejected"] += 1
            acc["appealed"] += status is not None
            acc["overturned"] += overturned
    for r in requesters.values():
        r["rejection_rate"] = r["rejected"] / r["decisions"] if r["decisions"] else 0.0
    return {
        "requesters": sorted(requesters.values(), key=lambda r: (-r["rejected"], r["requester_id"])),
        "rules": sorted(rules.values(), key=lambda r: (-r["rejected"], r["rule"])),
        "project_rejections": sorted(by_project.values(), key=lambda r: (-r["rejected"], r["project_id"] or 0)),
    }
