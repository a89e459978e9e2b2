"""Payroll rows of a run, and the payroll CSV and JSON.

One row per annotator and currency. Money stays integer minor units until it
is written: the CSV shows exact decimals ("12.50", never through float), the
JSON keeps the integers. Rows are sorted by currency, then annotator id, and
nothing here reads a clock, so the same run always gives the same bytes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import IO, Any, Iterable, Mapping

from .money import decimal_text, divide_half_up

KINDS = ("earning", "bonus", "top_up", "adjustment")
CSV_COLUMNS = ("annotator_id", "name", "email", "currency", "approved_micro_tasks", "active_hours", "base_pay",
               "bonuses", "top_ups", "adjustments", "total", "effective_hourly_rate")
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    email: str


@dataclass(frozen=True)
class MoneyLine:
    """The sum of one kind of entry of one annotator in one currency."""

    annotator_id: int
    currency: str
    kind: str
    amount: int
    entries: int


@dataclass(frozen=True)
class WorkLine:
    """The approved micro-tasks an annotator is paid for in a currency, and their active time."""

    annotator_id: int
    currency: str
    micro_tasks: int
    active_ms: int


@dataclass
class PayrollRow:
    annotator_id: int
    name: str
    email: str
    currency: str
    approved_micro_tasks: int = 0
    active_ms: int = 0
    base_pay: int = 0
    bonuses: int = 0
    top_ups: int = 0
    adjustments: int = 0
    entries: int = 0

    @property
    def total(self) -> int:
        return self.base_pay + self.bonuses + self.top_ups + self.adjustments

    @property
    def hourly_rate(self) -> int | None:
        """Total pay per hour of active time, in minor units; None without measured time."""
        if self.active_ms <= 0:
            return None
        return divide_half_up(self.total * MS_PER_HOUR, self.active_ms)

    @property
    def active_hours(self) -> str:
        centi = divide_half_up(self.active_ms * 100, MS_PER_HOUR)
        return f"{centi // 100}.{centi % 100:02d}"


_FIELD = {"earning": "base_pay", "bonus": "bonuses", "top_up": "top_ups", "adjustment": "adjustments"}


def payroll_rows(money: Iterable[MoneyLine], work: Iterable[WorkLine], people: Mapping[int, Person]) -> list[PayrollRow]:
    rows: dict[tuple[str, int], PayrollRow] = {}

    def row_for(annotator_id: int, currency: str) -> PayrollRow:
        key = (currency, annotator_id)
        if key not in rows:
            person = people.get(annotator_id) or Person(annotator_id, "", "")
            rows[key] = PayrollRow(annotator_id, person.name, person.email, currency)
        return rows[key]

    for line in money:
        if line.kind not in _FIELD:
            raise ValueError(f"unknown ledger entry kind {line.kind!r}")
        row = row_for(line.annotator_id, line.currency)
        setattr(row, _FIELD[line.kind], getattr(row, _FIELD[line.kind]) + line.amount)
        row.entries += line.entries
    for line in work:
        row = row_for(line.annotator_id, line.currency)
        row.approved_micro_tasks += line.micro_tasks
        row.active_ms += line.active_ms
    return [rows[key] for key in sorted(rows)]


def totals(rows: Iterable[PayrollRow]) -> dict[str, dict[str, int]]:
    """Per currency: the sums of the rows' columns, the number of annotators and of entries."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        t = out.setdefault(row.currency, {"annotators": 0, "entries": 0, "approved_micro_tasks": 0, "base_pay": 0,
                                          "bonuses": 0, "top_ups": 0, "adjustments": 0, "total": 0})
        t["annotators"] += 1
        t["entries"] += row.entries
        t["approved_micro_tasks"] += row.approved_micro_tasks
        for name in ("base_pay", "bonuses", "top_ups", "adjustments", "total"):
            t[name] += getattr(row, name)
    return dict(sorted(out.items()))


def _text_cell(value: str) -> str:
    # A spreadsheet runs a cell that starts with these as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_csv(rows: Iterable[PayrollRow], out: IO[str]) -> None:
    """The payroll CSV. Open `out` with newline=""."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        rate = row.hourly_rate
        writer.writerow([
            row.annotator_id, _text_cell(row.name), _text_cell(row.email), row.currency,
            row.approved_micro_tasks, row.active_hours,
            decimal_text(row.base_pay, row.currency), decimal_text(row.bonuses, row.currency),
            decimal_text(row.top_ups, row.currency), decimal_text(row.adjustments, row.currency),
            decimal_text(row.total, row.currency), "" if rate is None else decimal_text(rate, row.currency),
        ])


def row_json(row: PayrollRow) -> dict[str, Any]:
    """A row for payment systems: money in integer minor units of `currency`."""
    return {"annotator_id": row.annotator_id, "name": row.name, "email": row.email, "currency": row.currency,
            "approved_micro_tasks": row.approved_micro_tasks, "active_seconds": row.active_ms / 1000,
            "active_hours": row.active_hours, "base_pay": row.base_pay, "bonuses": row.bonuses,
            "top_ups": row.top_ups, "adjustments": row.adjustments, "total": row.total,
            "effective_hourly_rate": row.hourly_rate, "entries": row.entries}
