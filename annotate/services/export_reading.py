"""What an export reads: which items go in (`Filters`), and the project's
items as Label Studio tasks (`TaskReader`) or consensus rows (`consensus_rows`).

An export reads on a connection of its own (`read_connection`), in one
statement whose rows come as the database produces them (`stream`): on
PostgreSQL in psycopg's chunked rows mode, so the server keeps sending rows
while the writer works on the last ones, instead of a round trip and a wait
for every page of items; on SQLite the cursor steps through the rows the
same way, with a small page cache. Meanwhile progress is committed on the
session's connection without ending that read, and a format that needs more
than the items and their annotations (predictions, a consensus per item)
looks it up on the session a page of items at a time.

Rows are read as plain values: JSON as text, parsed here (each distinct
annotation result once) with the keys of its objects sorted (`canonical`), so
the same data gives the same file on both back ends; timestamps as ISO 8601
text, which PostgreSQL writes faster than psycopg makes and Python formats
datetimes.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, String, Text, and_, cast, func, or_, select, text, type_coerce

from exports import consensus as consensus_file
from exports.labelstudio import loads
from exports.pseudonyms import Pseudonyms

from ..extensions import db
from ..labelconfig import parse_config
from ..models import (Annotation, Assignment, GoldAnswer, Item, ItemScore, MicroTask, MicroTaskItem, Prediction,
                      Project)
from .errors import Invalid

log = logging.getLogger(__name__)

PAGE = 1000  # items between progress reports, and per look-up of predictions or consensus
STREAM_ROWS = 2000  # rows PostgreSQL sends at a time
MAX_IDS = 100_000
PARSED_RESULTS = 4096  # distinct annotation results kept parsed while reading
EXPORT_PAGE_CACHE_KIB = 4096  # per connection: an export reads on two at most


# --- filters -------------------------------------------------------------------------


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise Invalid(f"{name} must be true or false, not {value!r}", field=name)


@dataclass(frozen=True)
class Filters:
    only_finished: bool = False
    only_approved: bool = False
    min_confidence: float | None = None
    annotated_only: bool = False
    item_ids: tuple[int, ...] | None = None

    @classmethod
    def check(cls, raw: Mapping[str, Any]) -> "Filters":
        """Filters from form, query or JSON values; Invalid names the bad field."""
        confidence = raw.get("min_confidence")
        if confidence in (None, ""):
            confidence = None
        else:
            try:
                if isinstance(confidence, bool):
                    raise ValueError
                confidence = float(confidence)
            except (TypeError, ValueError):
                raise Invalid(f"min_confidence must be a number between 0 and 1, not {confidence!r}",
                              field="min_confidence") from None
            if not 0.0 <= confidence <= 1.0:
                raise Invalid(f"min_confidence must be between 0 and 1, not {confidence:g}", field="min_confidence")
        ids = raw.get("ids")
        if ids in (None, "", []):
            ids = None
        else:
            if isinstance(ids, (str, int)):
                ids = [ids]
            try:
                ids = tuple(sorted({int(part) for value in ids for part in str(value).split(",") if part.strip()}))
            except (TypeError, ValueError):
                raise Invalid("ids must be item ids", field="ids") from None
            if len(ids) > MAX_IDS:
                raise Invalid(f"at most {MAX_IDS} ids at once", field="ids")
        return cls(only_finished=_flag(raw.get("only_finished"), "only_finished"),
                   only_approved=_flag(raw.get("only_approved"), "only_approved"),
                   min_confidence=confidence, annotated_only=_flag(raw.get("annotated_only"), "annotated_only"),
                   item_ids=ids)

    def as_params(self) -> dict[str, Any]:
        return {"only_finished": self.only_finished, "only_approved": self.only_approved,
                "min_confidence": self.min_confidence, "annotated_only": self.annotated_only,
                "ids": list(self.item_ids) if self.item_ids is not None else None}

    @property
    def work_only(self) -> bool:
        return self.only_finished or self.only_approved

    def describe(self) -> str:
        parts = []
        if self.only_finished:
            parts.append("only finished micro-tasks")
        if self.only_approved:
            parts.append("only approved work")
        if self.min_confidence is not None:
            parts.append(f"consensus confidence at least {self.min_confidence:g}")
        if self.annotated_only:
            parts.append("only annotated items")
        if self.item_ids is not None:
            parts.append(f"{len(self.item_ids)} chosen items")
        return ", ".join(parts) or "all items"


def _item_filters(stmt, filters: Filters):
    # Each subquery correlates to Item alone: the consensus file's query also joins ItemScore.
    if filters.item_ids is not None:
        stmt = stmt.where(Item.id.in_(filters.item_ids))
    if filters.min_confidence is not None:
        stmt = stmt.where(or_(
            select(ItemScore.item_id).where(ItemScore.item_id == Item.id,
                                            ItemScore.confidence >= filters.min_confidence).correlate(Item).exists(),
            select(GoldAnswer.item_id).where(GoldAnswer.item_id == Item.id).correlate(Item).exists()))
    if filters.only_finished:
        stmt = stmt.where(select(MicroTaskItem.item_id).join(MicroTask, MicroTask.id == MicroTaskItem.micro_task_id)
                          .where(MicroTaskItem.item_id == Item.id, MicroTask.status == "done").correlate(Item).exists())
    if filters.only_approved:
        stmt = stmt.where(select(Annotation.id).join(Assignment, Assignment.id == Annotation.assignment_id)
                          .where(Annotation.item_id == Item.id, Assignment.status == "submitted",
                                 Assignment.decision == "approved").correlate(Item).exists())
    return stmt


def count_items(session, project_id: int, filters: Filters) -> int:
    stmt = _item_filters(select(func.count(Item.id)).where(Item.project_id == project_id), filters)
    return session.scalar(stmt) or 0


def _work(project_id: int, filters: Filters):
    """What makes an annotation ours to export: the conditions on its assignment."""
    conditions = [Assignment.id == Annotation.assignment_id, Assignment.project_id == project_id,
                  Assignment.status == "submitted"]
    if filters.only_approved:
        conditions.append(Assignment.decision == "approved")
    if filters.only_finished:
        conditions.append(Assignment.micro_task_id.in_(
            select(MicroTask.id).where(MicroTask.project_id == project_id, MicroTask.status == "done")))
    return and_(*conditions)


# --- reading ----------------------------------------------------------------------------


@contextlib.contextmanager
def read_connection() -> Iterator[Connection]:
    """A connection of the export's own, for `stream`: on SQLite with a small page
    cache, on PostgreSQL without parallel workers. The rows are taken at the pace the
    file is written, so workers would only sort everything before the first row, on
    cores the writer needs (and out of the few the whole server has for them)."""
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")  # ends with the read
        cache = PageCache(connection.dialect.name)
        cache.shrink(connection)
        try:
            yield connection
        finally:
            cache.restore()


def stream(connection: Connection, stmt) -> Iterator[tuple]:
    """The rows of `stmt` as the driver makes them, skipping SQLAlchemy's rows and
    result processing (about a microsecond a row): the statements here bind and
    select plain numbers and text. On PostgreSQL, psycopg's chunked rows mode
    (libpq 17 or later): the server sends rows as it finds them, STREAM_ROWS
    at a time, and stops when the reader stops early."""
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        if compiled.positiontup is None:  # psycopg: named parameters
            yield from cursor.stream(compiled.string, compiled.params, size=STREAM_ROWS)
        else:  # sqlite3: positional ones
            yield from cursor.execute(compiled.string, [compiled.params[name] for name in compiled.positiontup])
    finally:
        cursor.close()


def _raw(column):
    """The column as its driver sends it, without SQLAlchemy's JSON or timestamp processing."""
    return type_coerce(column, String)


def canonical(value: Any) -> Any:
    """`value` with the keys of each of its objects in sorted order. JSONB keeps keys
    in an order of its own (shorter ones first) and SQLite as they were written, so
    without this the same data would give different files on the two back ends."""
    kind = value.__class__
    if kind is dict:
        return {key: canonical(entry) if (entry := value[key]).__class__ in _NESTED else entry
                for key in sorted(value)}
    if kind is list:
        return [canonical(entry) if entry.__class__ in _NESTED else entry for entry in value]
    return value


_NESTED = (dict, list)


def _json(value: Any) -> Any:
    # JSON text, or what psycopg made of JSONB, with its keys in canonical order.
    return canonical(loads(value) if isinstance(value, str) else value)


def _moment(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if "T" in value:  # made by PostgreSQL, see _Columns.moment
            return value
        return value.replace(" ", "T", 1) + "+00:00"  # SQLite keeps naive UTC text: "2026-01-31 23:59:59.123456"
    return value.astimezone(dt.UTC).isoformat()


class _Columns:
    """JSON and timestamps as text, on either back end."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def json(self, column):
        # JSON as text on both back ends: parsed here (faster than psycopg's loader), results once each.
        return cast(column, Text) if self.postgres else _raw(column)

    def moment(self, column):
        # A timestamp as ISO 8601 text: PostgreSQL writes it; SQLite's stored text is finished by `_moment`.
        if self.postgres:
            return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        return _raw(column)


class TaskReader:
    """A project's items as Label Studio tasks, in id order: one streamed
    statement on `connection` gives each item with our annotations of it
    (with `label_sets`, the items alone); predictions (`predictions`) and
    label sets are looked up on the session a page of items at a time."""

    def __init__(self, session, connection: Connection, project: Project, filters: Filters, *,
                 pseudonyms: Pseudonyms, predictions: bool = False, label_sets: bool = False,
                 on_page: Callable[[int], None] | None = None,
                 before_page: Callable[[], None] | None = None) -> None:
        self.session = session
        self.connection = connection
        self.project = project
        self.filters = filters
        self.pseudonyms = pseudonyms
        self.predictions = predictions
        self.label_sets = label_sets
        self.on_page = on_page
        self.before_page = before_page
        self.items_read = 0
        self.columns = _Columns(connection.dialect.name)
        # Results repeat (a classification project has as many distinct ones as labels):
        # each distinct JSON text is parsed once and the result shared, read-only.
        self._parsed: dict[str, Any] = {}

    def _result(self, text_: Any) -> Any:
        if text_.__class__ is not str:
            return text_
        parsed = self._parsed.get(text_)
        if parsed is None:
            if len(self._parsed) >= PARSED_RESULTS:
                self._parsed.clear()
            parsed = self._parsed[text_] = canonical(loads(text_))
        return parsed

    def _annotation_columns(self) -> tuple:
        c = self.columns
        return (Annotation.id, Assignment.annotator_id, Assignment.decision, c.json(Annotation.result),
                Annotation.seconds, c.moment(Annotation.created_at))

    def _annotation_maker(self) -> Callable[..., dict]:
        """A function from `_annotation_columns` to a Label Studio annotation: the
        hot path of an export, called once per annotation, kept free of calls it can do without."""
        pseudonym, known, parsed, parse = self.pseudonyms, {}, self._parsed, self._result
        sqlite = not self.columns.postgres

        def annotation(annotation_id: int, annotator_id: int, decision: str | None, result: str, seconds: float,
                       created_at: str) -> dict[str, Any]:
            if sqlite:  # "2026-01-31 23:59:59.123456", naive UTC; PostgreSQL sent ISO 8601 already
                created_at = created_at.replace(" ", "T", 1) + "+00:00"
            who = known.get(annotator_id)
            if who is None:
                who = known[annotator_id] = pseudonym(annotator_id)
            return {"id": annotation_id, "completed_by": who, "result": parsed.get(result) or parse(result),
                    "was_cancelled": False, "ground_truth": False, "created_at": created_at,
                    "updated_at": created_at, "lead_time": seconds, "decision": decision}

        return annotation

    def _statement(self):
        c = self.columns
        stmt = select(Item.id, c.json(Item.data), Item.is_gold, c.json(Item.imported_annotations),
                      c.moment(Item.created_at))
        if not self.label_sets:
            # Left joins one after the other, which both back ends follow item by item in id order;
            # an annotation whose assignment is not ours to export comes without one, and is skipped.
            stmt = (stmt.add_columns(*self._annotation_columns())
                    .outerjoin(Annotation, Annotation.item_id == Item.id)
                    .outerjoin(Assignment, _work(self.project.id, self.filters))
                    .order_by(Item.id, Annotation.id))
        else:
            stmt = stmt.order_by(Item.id)
        return _item_filters(stmt.where(Item.project_id == self.project.id), self.filters)

    def _pages(self) -> Iterator[list[tuple[tuple, list[dict]]]]:
        """Pages of up to PAGE items, each (item columns, our annotations)."""
        annotation, with_annotations = self._annotation_maker(), not self.label_sets
        page: list[tuple[tuple, list[dict]]] = []
        current, annotations = None, []
        for row in stream(self.connection, self._statement()):
            if row[0] != current:
                if len(page) == PAGE:
                    yield page
                    page = []
                current, annotations = row[0], []
                page.append((row[:5], annotations))
            if with_annotations and row[6] is not None:  # an annotation, of work that is ours to export
                annotations.append(annotation(*row[5:]))
        if page:
            yield page

    def _label_set_annotations(self, items: Sequence[int]) -> dict[int, list[dict]]:
        """Our annotations of these items, by item."""
        if not items:
            return {}
        annotation = self._annotation_maker()
        found: dict[int, list[dict]] = {}
        stmt = (select(Annotation.item_id, *self._annotation_columns())
                .join(Assignment, _work(self.project.id, self.filters))
                .where(Annotation.item_id.in_(items)).order_by(Annotation.item_id, Annotation.id))
        for item_id, *columns in self.session.connection().execute(stmt):
            found.setdefault(item_id, []).append(annotation(*columns))
        return found

    def _predictions(self, first: int, last: int) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {}
        stmt = (select(Prediction.item_id, Prediction.id, _raw(Prediction.result), Prediction.score,
                       Prediction.model_version, self.columns.moment(Prediction.created_at))
                .join(Item, Item.id == Prediction.item_id)
                .where(Item.project_id == self.project.id, Prediction.item_id >= first, Prediction.item_id <= last)
                .order_by(Prediction.item_id, Prediction.id))
        for item_id, prediction_id, result, score, model_version, created_at in self.session.execute(stmt):
            found.setdefault(item_id, []).append({"id": prediction_id, "result": _json(result), "score": score,
                                                  "model_version": model_version, "created_at": _moment(created_at)})
        return found

    def _consensus(self, first: int, last: int) -> dict[int, list]:
        # Parsed once per distinct text, as the annotations are: the label sets only read them.
        found: dict[int, list] = {}
        connection, parse, c = self.session.connection(), self._result, self.columns
        for item_id, result in connection.execute(
                select(ItemScore.item_id, c.json(ItemScore.consensus)).where(
                    ItemScore.project_id == self.project.id, ItemScore.item_id >= first, ItemScore.item_id <= last)):
            found[item_id] = parse(result)
        for item_id, result in connection.execute(
                select(GoldAnswer.item_id, c.json(GoldAnswer.result)).join(Item, Item.id == GoldAnswer.item_id)
                .where(Item.project_id == self.project.id, GoldAnswer.item_id >= first, GoldAnswer.item_id <= last)):
            found[item_id] = parse(result)
        return found

    def tasks(self) -> Iterator[dict[str, Any]]:
        project_id = self.project.id
        with_imported = not self.filters.work_only
        for page in self._pages():
            first, last = page[0][0][0], page[-1][0][0]
            if self.before_page is not None and (self.predictions or self.label_sets):
                self.before_page()
            predictions = self._predictions(first, last) if self.predictions else {}
            consensus: dict[int, list] = {}
            if self.label_sets:
                # An item with a consensus is exported with it alone: its annotations are not read.
                consensus = self._consensus(first, last)
                unresolved = self._label_set_annotations([row[0] for row, _ in page if not consensus.get(row[0])])
            for (item_id, data, is_gold, imported, created_at), annotations in page:
                data = _json(data)
                if self.label_sets:
                    annotations = unresolved.get(item_id, [])
                if with_imported and imported is not None:
                    imported = _json(imported)
                    if imported:
                        annotations = [{**entry, "imported": True} for entry in imported] + annotations
                if self.label_sets:
                    annotations = _label_set(item_id, data, consensus.get(item_id), annotations)
                if self.filters.annotated_only and not annotations:
                    continue
                task = {"id": item_id, "project": project_id, "data": data, "is_gold": bool(is_gold),
                        "annotations": annotations, "created_at": _moment(created_at)}
                if self.predictions:
                    task["predictions"] = predictions.get(item_id, [])
                    task["total_annotations"] = len(annotations)
                    task["total_predictions"] = len(task["predictions"])
                yield task
            self.items_read += len(page)
            if self.on_page is not None:
                self.on_page(self.items_read)


def _label_set(item_id: int, data: Mapping[str, Any], consensus: list | None, annotations: list[dict]) -> list[dict]:
    """One annotation for the dataset formats: the consensus, else the latest annotation."""
    if consensus:
        chosen = {"id": None, "completed_by": "consensus", "result": consensus, "created_at": None}
    elif annotations:
        chosen = max(annotations, key=lambda a: (a.get("created_at") or "", a.get("id") or 0))
    else:
        return []
    width, height = data.get("width"), data.get("height")
    if isinstance(width, int) and isinstance(height, int):
        # The converter scales boxes by the region's original size: our image import knows it.
        result = [{"original_width": width, "original_height": height, **region} if isinstance(region, dict)
                  else region for region in chosen.get("result") or ()]
        chosen = {**chosen, "result": result}
    return [chosen]


def data_keys(session, project: Project) -> list[str]:
    """Every key of the project's items' data, asked of the database."""
    if session.get_bind().dialect.name == "postgresql":
        sql = "SELECT DISTINCT jsonb_object_keys(data) FROM item WHERE project_id = :project"
    else:
        sql = "SELECT DISTINCT j.key FROM item, json_each(item.data) AS j WHERE item.project_id = :project"
    keys = set(session.scalars(text(sql), {"project": project.id}))
    return sorted(keys | set(parse_config(project.label_config).data_keys))


def consensus_rows(connection: Connection, project: Project, filters: Filters,
                   on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """The consensus file's rows: each scored or gold item, in id order, from one streamed statement."""
    c = _Columns(connection.dialect.name)
    stmt = (select(Item.id, c.json(Item.data), Item.is_gold, c.json(ItemScore.consensus), ItemScore.confidence,
                   ItemScore.agreement, ItemScore.n_annotators, ItemScore.method, c.json(GoldAnswer.result))
            .outerjoin(ItemScore, ItemScore.item_id == Item.id)
            .outerjoin(GoldAnswer, GoldAnswer.item_id == Item.id)
            .where(Item.project_id == project.id, or_(ItemScore.item_id.is_not(None), GoldAnswer.item_id.is_not(None)))
            .order_by(Item.id))
    read = 0
    for item_id, data, is_gold, result, confidence, agreement, n_annotators, method, gold in stream(
            connection, _item_filters(stmt, filters)):
        data = _json(data)
        if gold is not None:
            yield consensus_file.row(item_id, data, _json(gold), 1.0, None, None, True, "gold")
        else:
            yield consensus_file.row(item_id, data, _json(result), confidence, agreement, n_annotators,
                                     bool(is_gold), method)
        read += 1
        if on_page is not None and read % PAGE == 0:
            on_page(read)
    if on_page is not None and read % PAGE:
        on_page(read)


class PageCache:
    """On SQLite, read with a 4 MiB page cache instead of the connection's 64 MiB: an
    export reads each page of the database once, so a large cache only holds pages it
    will not read again (64 MiB of a million-annotation export's peak memory). An export
    reads on two connections at most (its own, and the session's for look-ups a page at
    a time), so it holds no more cache than one connection at 8 MiB did.

    `shrink` runs on the export's own connection when it opens, and before each page's
    look-ups on whichever pooled connection the session holds then (a progress update
    commits in between); `restore` puts each connection's own size back, for whoever
    uses it next."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.shrunk: dict[int, tuple[Any, int]] = {}

    def shrink(self, connection: Connection) -> None:
        if not self.sqlite:
            return
        raw = connection.connection.dbapi_connection
        if id(raw) not in self.shrunk:
            before = raw.execute("PRAGMA cache_size").fetchone()[0]
            raw.execute(f"PRAGMA cache_size=-{EXPORT_PAGE_CACHE_KIB}")
            self.shrunk[id(raw)] = (raw, int(before))

    def restore(self) -> None:
        for raw, before in self.shrunk.values():
            try:
                raw.execute(f"PRAGMA cache_size={before}")
            except sqlite3.ProgrammingError:  # the pool closed it meanwhile: nothing to put back
                log.debug("an export's connection was closed before its page cache was restored")
        self.shrunk.clear()
