"""A project's progress over time, for the operator console's charts.

Counted per hour or per day (UTC) in the database: items done (the regular
items of micro-tasks that got their `k` submissions, by when they did),
labels made (annotations, by when they were submitted) and agreement (the
mean per-item agreement of the items done in each bucket).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, literal_column, select

from ..extensions import db
from ..models import Annotation, Assignment, Item, ItemScore, MicroTask, MicroTaskItem, User
from . import projects
from .errors import Invalid

BUCKETS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
MAX_POINTS = 2000
AUTO_HOURS_UP_TO = dt.timedelta(hours=72)


def _bucket(column, unit: str):
    """The start of the UTC hour or day a timestamp falls in, in SQL."""
    # Literals, not bound parameters: PostgreSQL must see the SELECT and the
    # GROUP BY expressions as the same. `unit` is one of BUCKETS.
    if db.engine.dialect.name == "postgresql":
        return func.date_trunc(literal_column(f"'{unit}'"), func.timezone(literal_column("'UTC'"), column))
    # SQLite keeps naive UTC text (see UTCDateTime).
    pattern = "%Y-%m-%d %H:00:00" if unit == "hour" else "%Y-%m-%d 00:00:00"
    return func.strftime(literal_column(f"'{pattern}'"), column)


def _moment(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _floor(moment: dt.datetime, unit: str) -> dt.datetime:
    moment = moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


def project_progress(user_id: int, project_id: int, bucket: str | None = None) -> dict[str, Any]:
    """Items done, labels per hour and agreement per hour or day, from the first work to the last."""
    session = db.session
    project = projects.visible_project(session, session.get(User, user_id), project_id)
    if bucket not in (None, "", *BUCKETS):
        raise Invalid(f"bucket must be hour or day, not {bucket!r}", field="bucket")
    first, last = session.execute(select(func.min(Annotation.created_at), func.max(Annotation.created_at))
                                  .join(Assignment, Assignment.id == Annotation.assignment_id)
                                  .where(Assignment.project_id == project_id)).one()
    done_first, done_last = session.execute(select(func.min(MicroTask.done_at), func.max(MicroTask.done_at))
                                            .where(MicroTask.project_id == project_id)).one()
    moments = [m for m in (first, last, done_first, done_last) if m is not None]
    unit = bucket or ("hour" if not moments or max(moments) - min(moments) <= AUTO_HOURS_UP_TO else "day")
    regular_items = session.scalar(select(func.count(Item.id)).where(Item.project_id == project_id,
                                                                     Item.is_gold.is_(False)))
    out: dict[str, Any] = {"project_id": project_id, "title": project.title, "bucket": unit,
                           "bucket_hours": BUCKETS[unit] / dt.timedelta(hours=1), "points": [],
                           "totals": {"items": regular_items, "items_done": 0, "labels": 0, "agreement": None}}
    if not moments:
        session.rollback()
        return out
    start, end = _floor(min(moments), unit), _floor(max(moments), unit)
    steps = int((end - start) / BUCKETS[unit]) + 1
    if steps > MAX_POINTS:
        raise Invalid(f"{steps} {unit}s is too many points to draw: ask for bucket=day", field="bucket")

    done_at = _bucket(MicroTask.done_at, unit)
    done_rows = session.execute(
        select(done_at, func.count(Item.id), func.avg(ItemScore.agreement), func.count(ItemScore.item_id))
        .select_from(MicroTask)
        .join(MicroTaskItem, MicroTaskItem.micro_task_id == MicroTask.id)
        .join(Item, Item.id == MicroTaskItem.item_id)
        .outerjoin(ItemScore, ItemScore.item_id == Item.id)
        .where(MicroTask.project_id == project_id, MicroTask.status == "done",
               MicroTask.is_qualification.is_(False), Item.is_gold.is_(False))
        .group_by(done_at)).all()
    made_at = _bucket(Annotation.created_at, unit)
    label_rows = session.execute(
        select(made_at, func.count(Annotation.id))
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .where(Assignment.project_id == project_id)
        .group_by(made_at)).all()
    session.rollback()

    done = {_moment(t): (int(n), float(mean) if mean is not None else None, int(scored))
            for t, n, mean, scored in done_rows if t is not None}
    labels = {_moment(t): int(n) for t, n in label_rows if t is not None}
    hours = out["bucket_hours"]
    cumulative = 0
    agreement_sum, agreement_n = 0.0, 0
    for step in range(steps):
        moment = start + step * BUCKETS[unit]
        n_done, mean, scored = done.get(moment, (0, None, 0))
        cumulative += n_done
        if mean is not None:
            agreement_sum += mean * scored
            agreement_n += scored
        made = labels.get(moment, 0)
        out["points"].append({"t": moment.isoformat().replace("+00:00", "Z"), "items_done": n_done,
                              "items_done_total": cumulative, "labels": made,
                              "labels_per_hour": round(made / hours, 3),
                              "agreement": round(mean, 4) if mean is not None else None})
    out["totals"].update(items_done=cumulative, labels=sum(labels.values()),
                         agreement=round(agreement_sum / agreement_n, 4) if agreement_n else None)
    return out
