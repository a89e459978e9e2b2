"""Matching annotators to projects, as pure functions (no ORM, no Redis).

The dispatch script in `tasks.dispatch` and the annotator's dashboard both
order the projects open to an annotator with these rules, so the page lists
them in the order `POST /api/work/next` without a project hands out work:

    project rate   = floor(pay per micro-task * 3600 / reference seconds)
                     reference seconds: the project's median active seconds per
                     micro-task over its latest scored work (at least
                     MIN_SAMPLES of them), else the requester's estimate
    ranking rate   = the project rate in minor units of the ranking currency, at the
                     operators' exchange rate (`in_ranking_currency`); 0 when the
                     project's currency has none. Used to order projects only: pay,
                     and the rate shown, stay in the project's currency
    speed (bp)     = 10,000 * median over the annotator's latest scored work of
                     one config kind of (their active seconds / that project's
                     reference seconds); 10,000 (the usual pace) without any
    expected rate  = floor(ranking rate * 10,000 / speed)    minor units an hour
    due            = the deadline (epoch seconds) when it is at most the deadline
                     window away or has passed, else 0 (the window is the operators'
                     setting DEADLINE_WINDOW_SECONDS, passed in)
    skill margin   = min over the skills the project uses of (level - minimum);
                     the platform's skill for the project's config kind counts
                     with minimum 0; 0 when it uses none
    order          = priority desc, ready before a qualification test, due before
                     not due and the nearest deadline first, expected rate desc,
                     skill margin desc, project id asc

Everything is an integer, so Lua (doubles) and Python agree exactly. Only
projects with work left for the annotator are ordered, so a project due soon
ranks first only while it has work left.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Mapping

import numpy as np

from .currency import minor_digits
from .pay import hourly_rate, median_seconds

BP = 10_000  # a speed of 10,000 basis points is the usual pace
MIN_SAMPLES = 3  # scored micro-tasks before a project's own median replaces the estimate
SPEED_LIMITS = (500, 200_000)  # 20x faster to 20x slower: beyond that the active time is noise


@dataclass(frozen=True)
class Reference:
    """The seconds a micro-task of a project takes at the usual pace, and where they come from."""

    seconds: int | None
    basis: str | None  # "median" | "estimate" | None
    n: int = 0  # scored micro-tasks behind a median


def reference(samples: Iterable[float], estimate: int | None) -> Reference:
    """The project's median active seconds over scored work, else the requester's estimate."""
    measured = [s for s in samples if s > 0]
    if len(measured) >= MIN_SAMPLES:
        return Reference(max(1, median_seconds(measured)), "median", len(measured))
    if estimate:
        return Reference(int(estimate), "estimate", len(measured))
    return Reference(None, None, len(measured))


def project_rate(pay_minor: int, ref: Reference) -> int:
    """Minor units an hour at the usual pace; 0 when nothing says how long the work takes."""
    return hourly_rate(int(pay_minor), ref.seconds) if ref.seconds else 0


def speed(ratios: Iterable[float]) -> int:
    """The annotator's pace on one config kind, in basis points of the usual pace (lower is faster)."""
    values = [r for r in ratios if r > 0]
    if not values:
        return BP
    bp = int(np.floor(float(np.median(values)) * BP + 0.5))
    return min(max(bp, SPEED_LIMITS[0]), SPEED_LIMITS[1])


def in_ranking_currency(minor: int, currency: str, ranking: str, rates: Mapping[str, str]) -> int | None:
    """Minor units of `currency` as whole minor units of the ranking currency, or None
    without an exchange rate. `rates` maps a code to the value of one major unit in the
    ranking currency ("EUR": "1.08"); exact decimal arithmetic, rounded down."""
    if currency == ranking:
        return int(minor)
    rate = rates.get(currency)
    if rate is None:
        return None
    value = Fraction(int(minor)) * Fraction(str(rate)) * 10 ** minor_digits(ranking)
    return int(value // 10 ** minor_digits(currency))


def due(deadline: dt.datetime | None, now: dt.datetime, window: int) -> int:
    """The deadline in epoch seconds when it is `window` seconds away or closer (or past), else 0."""
    if deadline is None:
        return 0
    epoch = int(deadline.timestamp())
    return epoch if epoch - now.timestamp() <= window else 0


def expected_rate(rate: int, speed_bp: int) -> int:
    """What an hour of this project pays this annotator, at their pace."""
    return rate * BP // (speed_bp or BP)


def expected_seconds(ref_seconds: int | None, speed_bp: int) -> int | None:
    """The seconds a micro-task takes this annotator, for the page (rounded up)."""
    if not ref_seconds:
        return None
    return -(-ref_seconds * (speed_bp or BP) // BP)


def margin(minimums: Mapping[int, int], levels: Mapping[int, int], kind_skill: int = 0) -> int:
    """How far above the project's minimums the annotator is, in their weakest skill it uses."""
    used = dict(minimums)
    if kind_skill and kind_skill not in used:
        used[kind_skill] = 0
    if not used:
        return 0
    return min(levels.get(skill, 0) - minimum for skill, minimum in used.items())


def order_key(priority: int, needs_test: bool, rate: int, skill_margin: int, project_id: int,
              due_at: int = 0) -> tuple:
    """Sort ascending: the first project is the one `next` hands out work from first.
    `rate` is the expected rate in the ranking currency; `due_at` is `due(...)`."""
    return (-priority, bool(needs_test), 0 if due_at else 1, due_at, -rate, -skill_margin, project_id)


@dataclass(frozen=True)
class Closed:
    """One rule that keeps an annotator off a project, and what would open it."""

    rule: str  # blocked | category | language | skill | qualification | cap
    words: str
    how: str


def closed_by(*, blocked: bool = False, blocked_reason: str | None = None,
              categories: Iterable[str] = (), opted_out: Iterable[str] = (),
              required_languages: Iterable[str] = (), languages: Iterable[str] = (),
              minimums: Mapping[int, int] | None = None, levels: Mapping[int, int] | None = None,
              skill_names: Mapping[int, str] | None = None, cap: int = 0, took: int = 0,
              qualification_failed: str | None = None,
              qualification_again: dt.datetime | None = None) -> list[Closed]:
    """Every rule that closes the project to the annotator, in the order dispatch checks them.

    Mirrors `welcome` and `qualified` in the dispatch script: categories the
    annotator opted out of, required languages they have not declared, skill
    minimums above their level, the share cap, a failed qualification, and one left
    unfinished whose cooling-off (`qualification_again`, the moment it ends) still runs.
    """
    out: list[Closed] = []
    if blocked:
        out.append(Closed("blocked", f"your account is blocked: {blocked_reason or 'ask an operator why'}",
                          "ask an operator to unblock your account"))
    out_of = sorted(set(categories) & set(opted_out))
    if out_of:
        out.append(Closed("category", f"it shows {', '.join(out_of)} content, which you opted out of",
                          "take it off the content you opted out of on your profile, if you want this work"))
    missing = sorted(set(required_languages) - set(languages))
    if missing:
        them = "it" if len(missing) == 1 else "them"
        out.append(Closed("language", f"it needs {', '.join(missing)}, which your profile does not list",
                          f"declare {', '.join(missing)} on your profile if you read {them}"))
    if qualification_failed:
        out.append(Closed("qualification", f"qualification not passed: {qualification_failed}",
                          "a submitted qualification test is not taken again"))
        return out
    if qualification_again:
        when = qualification_again.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        out.append(Closed("qualification", "you left its qualification test unfinished",
                          f"take the test again from {when}, on a fresh micro-task"))
        return out
    levels, names = levels or {}, skill_names or {}
    for skill, minimum in sorted((minimums or {}).items()):
        level = levels.get(skill, 0)
        if level < minimum:
            name = names.get(skill, f"skill {skill}")
            out.append(Closed("skill", f"{name}: your level {level}, the minimum {minimum}",
                              f"raise {name} to {minimum} with good work on projects that use it, "
                              f"or pass a qualification that grants it"))
    if cap and took >= cap:
        out.append(Closed("cap", f"you took {took} of the {cap} micro-tasks one annotator may take",
                          "the project keeps its labels from many people: other projects are open to you"))
    return out
