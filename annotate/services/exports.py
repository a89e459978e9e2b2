"""Dataset exports: a project's items, annotations and consensus, as files.

`start_export` records a background job (a `BackgroundJob` of kind "export")
and queues it after the commit; `run_export`, the job, pages through the
project's items by id (keyset pagination), loads each page's annotations,
hands the tasks to a streaming writer of `exports/` and records progress,
so no export holds the whole project in memory. The finished file lives
under EXPORT_ROOT until EXPORT_TTL_SECONDS have passed (`expire_exports`
removes it). `export_now` writes the same file before answering, for Label
Studio's synchronous export endpoint.

What goes in:
- every item, or only those that pass the filters: only items of finished
  micro-tasks, only approved work, only a consensus at or above a confidence
  (gold items count as certain), only listed ids, only annotated items;
- our annotations (submitted assignments) and the ones the item was
  imported with. Under "only finished" or "only approved" the imported ones
  are left out: they are neither. Annotator ids are pseudonymised with a
  secret drawn for each export (`exports.pseudonyms`); imported annotations
  keep what the upload said.
- COCO, YOLO, VOC and CoNLL get one label set per item: its consensus
  (a gold item's known answer), else its latest annotation.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from flask import current_app
from sqlalchemy import String, Text, cast, func, or_, select, text, type_coerce, update

from exports import consensus as consensus_file
from exports import converted, formats, labelstudio
from exports.formats import Format, Offer
from exports.labelstudio import Written, loads
from exports.media import MediaFiles
from exports.pseudonyms import Pseudonyms

from ..extensions import db
from ..labelconfig import parse_config
from ..models import (Annotation, Assignment, BackgroundJob, GoldAnswer, Item, ItemScore, MicroTask, MicroTaskItem,
                      Prediction, Project, User, utcnow)
from ..queue import enqueue
from . import projects
from .errors import DomainError, Invalid, NotFound

log = logging.getLogger(__name__)

PAGE = 1000
PROGRESS_EVERY = 10_000
DEFAULT_TTL_SECONDS = 7 * 24 * 3600
MAX_IDS = 100_000
ASSIGNMENTS_AT_ONCE = 5000
PARSED_RESULTS = 4096  # distinct annotation results kept parsed while reading
# A synchronous export's file is removed when its response closes; files a crash left go after a day.
STALE_TEMPORARY_SECONDS = 24 * 3600


class Gone(DomainError):
    status = 410


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


# --- formats ----------------------------------------------------------------------------


def offers_for(project: Project) -> list[Offer]:
    return formats.offers(project.label_config)


def available_formats(user_id: int, project_id: int) -> list[Offer]:
    """Every format, each with the reason it is not offered for this project's config."""
    session = db.session
    project = projects.visible_project(session, session.get(User, user_id), project_id)
    return offers_for(project)


def _offered(project: Project, name: Any) -> Format:
    if not isinstance(name, str) or not name.strip():
        raise Invalid("choose an export format", field="format")
    offer = formats.offer(project.label_config, name)
    if offer is None:
        names = ", ".join(formats.FORMATS)
        raise Invalid(f"unknown export format {name!r}; formats are {names}", field="format")
    if not offer.available:
        raise Invalid(f"{offer.format.title} is not offered for this project: {offer.reason}", field="format")
    return offer.format


# --- reading the project page by page ---------------------------------------------------------


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


def _count_items(session, project_id: int, filters: Filters) -> int:
    stmt = _item_filters(select(func.count(Item.id)).where(Item.project_id == project_id), filters)
    return session.scalar(stmt) or 0


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# Pages are read with SQLAlchemy's per-row JSON and timestamp processing turned
# off (`_raw`, JSON as text), and converted by `_json` and `_moment` instead: at a
# million annotations that processing costs more than writing the file.
def _raw(column):
    return type_coerce(column, String)


def _json(value: Any) -> Any:
    # SQLite hands back JSON text; psycopg has already decoded JSONB.
    return loads(value) if isinstance(value, str) else value


def _moment(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if "T" in value:  # made by PostgreSQL, see _Reader._moment_text
            return value
        return value.replace(" ", "T", 1) + "+00:00"  # SQLite keeps naive UTC text: "2026-01-31 23:59:59.123456"
    return value.astimezone(dt.UTC).isoformat()


class _Reader:
    """Pages of a project's items as Label Studio tasks."""

    def __init__(self, session, project: Project, filters: Filters, *, pseudonyms: Pseudonyms,
                 predictions: bool = False, label_sets: bool = False,
                 on_page: Callable[[int], None] | None = None) -> None:
        self.session = session
        self.project = project
        self.filters = filters
        self.pseudonyms = pseudonyms
        self.predictions = predictions
        self.label_sets = label_sets
        self.on_page = on_page
        self.items_read = 0
        self.postgres = session.get_bind().dialect.name == "postgresql"
        # Results repeat (a classification project has as many distinct ones as labels):
        # each distinct JSON text is parsed once and the result shared, read-only.
        self._parsed: dict[str, Any] = {}

    def _json_text(self, column):
        # JSON as text on both back ends: parsed here (faster than psycopg's loader), results once each.
        return cast(column, Text) if self.postgres else _raw(column)

    def _moment_text(self, column):
        # A timestamp as ISO 8601 text: PostgreSQL writes it (faster than making
        # and formatting datetimes here); SQLite's stored text is finished by `_moment`.
        if self.postgres:
            return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        return _raw(column)

    def _result(self, text_: Any) -> Any:
        if text_.__class__ is not str:
            return text_
        parsed = self._parsed.get(text_)
        if parsed is None:
            if len(self._parsed) >= PARSED_RESULTS:
                self._parsed.clear()
            parsed = self._parsed[text_] = loads(text_)
        return parsed

    def _items(self, after: int) -> list:
        stmt = select(Item.id, self._json_text(Item.data), Item.is_gold, self._json_text(Item.imported_annotations),
                      self._moment_text(Item.created_at)).where(Item.project_id == self.project.id, Item.id > after)
        stmt = _item_filters(stmt, self.filters).order_by(Item.id).limit(PAGE)
        return self.session.connection().execute(stmt).all()

    def _annotations(self, first: int, last: int) -> dict[int, list[dict]]:
        connection = self.session.connection()
        # Two indexed look-ups instead of a join: joined, PostgreSQL hashes all
        # of the project's assignments for every page.
        rows = connection.execute(
            select(Annotation.item_id, Annotation.id, Annotation.assignment_id, self._json_text(Annotation.result),
                   Annotation.seconds, self._moment_text(Annotation.created_at))
            .where(Annotation.item_id >= first, Annotation.item_id <= last)
            .order_by(Annotation.item_id, Annotation.id)).all()
        if not rows:
            return {}
        wanted = (select(Assignment.id, Assignment.annotator_id, Assignment.decision)
                  .where(Assignment.project_id == self.project.id, Assignment.status == "submitted"))
        if self.filters.only_approved:
            wanted = wanted.where(Assignment.decision == "approved")
        if self.filters.only_finished:
            wanted = wanted.join(MicroTask, MicroTask.id == Assignment.micro_task_id).where(MicroTask.status == "done")
        ids = sorted({row[2] for row in rows})
        assignments = {}
        for at in range(0, len(ids), ASSIGNMENTS_AT_ONCE):  # under the databases' limits on bound values
            batch = ids[at:at + ASSIGNMENTS_AT_ONCE]
            assignments.update((row[0], row) for row in connection.execute(wanted.where(Assignment.id.in_(batch))))
        found: dict[int, list[dict]] = {}
        # The hot loop of an export: one pass per annotation, kept free of calls it can do without.
        pseudonym, known, parsed, parse, postgres = self.pseudonyms, {}, self._parsed, self._result, self.postgres
        for item_id, annotation_id, assignment_id, result, seconds, created_at in rows:
            assignment = assignments.get(assignment_id)
            if assignment is None:  # not submitted, another project's, or filtered out
                continue
            _, annotator_id, decision = assignment
            # PostgreSQL sent ISO 8601 already; SQLite sent "2026-01-31 23:59:59.123456", naive UTC.
            moment = created_at if postgres else created_at.replace(" ", "T", 1) + "+00:00"
            who = known.get(annotator_id)
            if who is None:
                who = known[annotator_id] = pseudonym(annotator_id)
            annotation = {"id": annotation_id, "completed_by": who,
                          "result": parsed.get(result) or parse(result),
                          "was_cancelled": False, "ground_truth": False, "created_at": moment, "updated_at": moment,
                          "lead_time": seconds, "decision": decision}
            listed = found.get(item_id)
            if listed is None:
                found[item_id] = [annotation]
            else:
                listed.append(annotation)
        return found

    def _predictions(self, first: int, last: int) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {}
        stmt = (select(Prediction.item_id, Prediction.id, _raw(Prediction.result), Prediction.score,
                       Prediction.model_version, self._moment_text(Prediction.created_at))
                .join(Item, Item.id == Prediction.item_id)
                .where(Item.project_id == self.project.id, Prediction.item_id >= first, Prediction.item_id <= last)
                .order_by(Prediction.item_id, Prediction.id))
        for item_id, prediction_id, result, score, model_version, created_at in self.session.execute(stmt):
            found.setdefault(item_id, []).append({"id": prediction_id, "result": _json(result), "score": score,
                                                  "model_version": model_version, "created_at": _moment(created_at)})
        return found

    def _consensus(self, first: int, last: int) -> dict[int, list]:
        found: dict[int, list] = {}
        for item_id, result in self.session.execute(
                select(ItemScore.item_id, _raw(ItemScore.consensus)).where(
                    ItemScore.project_id == self.project.id, ItemScore.item_id >= first, ItemScore.item_id <= last)):
            found[item_id] = _json(result)
        for item_id, result in self.session.execute(
                select(GoldAnswer.item_id, _raw(GoldAnswer.result)).join(Item, Item.id == GoldAnswer.item_id).where(
                    Item.project_id == self.project.id, GoldAnswer.item_id >= first, GoldAnswer.item_id <= last)):
            found[item_id] = _json(result)
        return found

    def tasks(self) -> Iterator[dict[str, Any]]:
        after = 0
        project_id = self.project.id
        with_imported = not self.filters.work_only
        while True:
            rows = self._items(after)
            if not rows:
                return
            first, after = rows[0][0], rows[-1][0]
            ours = self._annotations(first, after)
            predictions = self._predictions(first, after) if self.predictions else {}
            consensus = self._consensus(first, after) if self.label_sets else {}
            for item_id, data, is_gold, imported, created_at in rows:
                data = _json(data)
                annotations = ours.get(item_id, [])
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
            self.items_read += len(rows)
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


def _data_keys(session, project: Project) -> list[str]:
    """Every key of the project's items' data, asked of the database."""
    if session.get_bind().dialect.name == "postgresql":
        sql = "SELECT DISTINCT jsonb_object_keys(data) FROM item WHERE project_id = :project"
    else:
        sql = "SELECT DISTINCT j.key FROM item, json_each(item.data) AS j WHERE item.project_id = :project"
    keys = set(session.scalars(text(sql), {"project": project.id}))
    return sorted(keys | set(parse_config(project.label_config).data_keys))


def _consensus_rows(session, project: Project, filters: Filters,
                    on_page: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    after, read = 0, 0
    while True:
        stmt = (select(Item.id, _raw(Item.data), Item.is_gold, _raw(ItemScore.consensus), ItemScore.confidence,
                       ItemScore.agreement, ItemScore.n_annotators, ItemScore.method, _raw(GoldAnswer.result))
                .outerjoin(ItemScore, ItemScore.item_id == Item.id)
                .outerjoin(GoldAnswer, GoldAnswer.item_id == Item.id)
                .where(Item.project_id == project.id, Item.id > after,
                       or_(ItemScore.item_id.is_not(None), GoldAnswer.item_id.is_not(None))))
        rows = session.execute(_item_filters(stmt, filters).order_by(Item.id).limit(PAGE)).all()
        if not rows:
            return
        after = rows[-1][0]
        for item_id, data, is_gold, result, confidence, agreement, n_annotators, method, gold in rows:
            data = _json(data)
            if gold is not None:
                yield consensus_file.row(item_id, data, _json(gold), 1.0, None, None, True, "gold")
            else:
                yield consensus_file.row(item_id, data, _json(result), confidence, agreement, n_annotators,
                                         bool(is_gold), method)
        read += len(rows)
        if on_page is not None:
            on_page(read)


# --- writing ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _objects_frozen() -> Iterator[None]:
    """Keep the objects that exist before an export out of the garbage
    collector's full passes while it runs: an export allocates millions of
    short-lived dicts, and each full pass would walk the whole app again
    (about a third of the time of a large export). The freeze is process-wide:
    two exports in one web worker's threads merely share it, and unfreezing
    hands every object back to the collector."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _write(session, project: Project, fmt: Format, filters: Filters, target: Path, *, with_images: bool,
           on_page: Callable[[int], None] | None = None) -> Written:
    """Write one export of `project` to `target`."""
    with _objects_frozen():
        return _write_file(session, project, fmt, filters, target, with_images=with_images, on_page=on_page)


def _write_file(session, project: Project, fmt: Format, filters: Filters, target: Path, *, with_images: bool,
                on_page: Callable[[int], None] | None) -> Written:
    pseudonyms = Pseudonyms()
    config = parse_config(project.label_config)
    controls = {c.name: c.tag for c in config.controls}
    if fmt.name in ("CONSENSUS_JSONL", "CONSENSUS_CSV"):
        rows = _consensus_rows(session, project, filters, on_page)
        with open(target, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
            if fmt.name == "CONSENSUS_JSONL":
                return consensus_file.write_jsonl(rows, out)
            return consensus_file.write_csv(rows, out)
    reader = _Reader(session, project, filters, pseudonyms=pseudonyms, predictions=fmt.name == "JSON",
                     label_sets=fmt.converted, on_page=on_page)
    if fmt.converted:
        media = MediaFiles(current_app.config["MEDIA_ROOT"]) if with_images else None
        workdir = target.parent / f".work-{target.name}-{uuid.uuid4().hex}"
        with open(target, "wb") as out:
            return converted.write_converted(fmt.name, project.label_config, reader.tasks(), out, workdir,
                                             formats.converter_data_key(project.label_config), media)
    with open(target, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
        if fmt.name == "JSON":
            return labelstudio.write_json(reader.tasks(), out)
        if fmt.name == "JSON_MIN":
            return labelstudio.write_json_min(reader.tasks(), out, controls)
        separator = "\t" if fmt.name == "TSV" else ","
        return labelstudio.write_csv(reader.tasks(), out, controls, _data_keys(session, project), separator=separator)


def _export_root() -> Path:
    return Path(current_app.config["EXPORT_ROOT"])


def ttl_seconds() -> int:
    return int(current_app.config.get("EXPORT_TTL_SECONDS", DEFAULT_TTL_SECONDS))


def download_name(project_id: int, fmt: Format, export_id: int | None = None) -> str:
    what = "consensus" if fmt.name.startswith("CONSENSUS") else fmt.name.lower().replace("_", "-")
    return f"project-{project_id}-{what}" + (f"-{export_id}" if export_id else "") + f".{fmt.extension}"


# --- background exports -----------------------------------------------------------------------


def start_export(user_id: int, project_id: int, format_name: Any, filters: Filters, *,
                 with_images: bool = True) -> int:
    """Record an export and queue it; return its id."""
    rq_id = f"export-{uuid.uuid4().hex}"
    with db.transaction() as session:
        project = projects.visible_project(session, session.get(User, user_id), project_id)
        fmt = _offered(project, format_name)
        job = BackgroundJob(rq_id=rq_id, kind="export", project_id=project_id, user_id=user_id,
                            params={"format": fmt.name, "filters": filters.as_params(),
                                    "with_images": bool(with_images and fmt.archive)})
        session.add(job)
        session.flush()
        job_id = job.id
    enqueue("tasks.exports.run_export", job_id, job_id=rq_id)
    return job_id


def _progress(job_id: int, done: int) -> None:
    with db.transaction() as session:
        session.execute(update(BackgroundJob).where(BackgroundJob.id == job_id).values(done=done))


def run_export(job_id: int) -> None:
    """Write one export. Safe to run again: a finished export is left alone,
    a failed one starts over."""
    session = db.session
    job = session.get(BackgroundJob, job_id)
    if job is None:  # deleted with its project meanwhile: nothing to write
        log.info("export %s is gone; nothing to do", job_id)
        return
    if job.kind != "export":
        raise NotFound(f"background job {job_id} is not an export")
    if job.status == "finished" or (job.status == "failed" and job.errors):
        return
    started = time.monotonic()
    project = session.get(Project, job.project_id)
    filters = Filters.check(job.params.get("filters") or {})
    try:
        fmt = _offered(project, job.params.get("format"))
    except Invalid as error:  # the config changed since: a retry cannot help
        with db.transaction() as session:
            job = session.get(BackgroundJob, job_id)
            job.status, job.finished_at = "failed", utcnow()
            job.error, job.errors = error.message, [{"message": error.message}]
        return
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        job.status, job.started_at, job.done, job.error = "running", utcnow(), 0, None
        job.total = _count_items(session, project.id, filters)
        with_images = bool(job.params.get("with_images"))
    folder = _export_root() / f"project-{project.id}"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"export-{job_id}-{secrets.token_hex(8)}.{fmt.extension}"
    part = folder / f".{name}.part"
    next_progress = [PROGRESS_EVERY]

    def on_page(done: int) -> None:
        if done >= next_progress[0]:
            _progress(job_id, done)
            next_progress[0] = done + PROGRESS_EVERY

    try:
        written = _write(session, project, fmt, filters, part, with_images=with_images, on_page=on_page)
        os.replace(part, folder / name)
    except Exception as error:
        part.unlink(missing_ok=True)
        session.rollback()
        with db.transaction() as session:
            job = session.get(BackgroundJob, job_id)
            job.status, job.finished_at = "failed", utcnow()
            job.error = f"the export stopped on an internal error ({type(error).__name__}); try again"
        log.exception("export %s of project %s failed", job_id, project.id)
        raise
    now = utcnow()
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        job.status, job.finished_at = "finished", now
        job.done = written.items if fmt.name.startswith("CONSENSUS") else (job.total or 0)
        job.expires_at = now + dt.timedelta(seconds=ttl_seconds())
        job.result = {"path": f"project-{project.id}/{name}", "filename": download_name(project.id, fmt, job_id),
                      "mimetype": fmt.mimetype, "size": (folder / name).stat().st_size, "format": fmt.name,
                      "seconds": round(time.monotonic() - started, 3), **written.as_dict()}


def _export_of(session, user_id: int, project_id: int, export_id: int) -> BackgroundJob:
    projects.visible_project(session, session.get(User, user_id), project_id)
    job = session.get(BackgroundJob, export_id)
    if job is None or job.project_id != project_id or job.kind != "export":
        raise NotFound(f"no export {export_id} in project {project_id}")
    return job


def get_export(user_id: int, project_id: int, export_id: int) -> BackgroundJob:
    return _export_of(db.session, user_id, project_id, export_id)


def list_exports(user_id: int, project_id: int, limit: int = 50) -> list[BackgroundJob]:
    session = db.session
    projects.visible_project(session, session.get(User, user_id), project_id)
    return list(session.scalars(select(BackgroundJob).where(
        BackgroundJob.project_id == project_id, BackgroundJob.kind == "export")
        .order_by(BackgroundJob.id.desc()).limit(limit)))


def is_expired(job: BackgroundJob, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return bool(job.result.get("expired")) or (job.expires_at is not None and job.expires_at <= now)


@dataclass(frozen=True)
class Download:
    path: Path
    filename: str
    mimetype: str
    temporary: bool = False  # remove the file once it is sent


def export_file(user_id: int, project_id: int, export_id: int) -> Download:
    """The file of a finished export that has not expired."""
    job = _export_of(db.session, user_id, project_id, export_id)
    if job.status != "finished":
        raise NotFound(f"export {export_id} is {job.status}: there is nothing to download yet"
                       if job.status in ("queued", "running") else f"export {export_id} failed: {job.error}")
    if is_expired(job):
        raise Gone(f"export {export_id} expired on {job.expires_at:%Y-%m-%d %H:%M} UTC; start a new one")
    path = _export_root() / job.result["path"]
    if not path.is_file():
        raise Gone(f"the file of export {export_id} is gone; start a new one")
    return Download(path, job.result["filename"], job.result["mimetype"])


def export_now(user_id: int, project_id: int, format_name: Any, filters: Filters, *,
               with_images: bool = True) -> Download:
    """Write an export before answering, as Label Studio's /export endpoint
    does; the caller sends the file and removes it."""
    session = db.session
    project = projects.visible_project(session, session.get(User, user_id), project_id)
    fmt = _offered(project, format_name)
    folder = _export_root() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"now-{uuid.uuid4().hex}.{fmt.extension}"
    try:
        _write(session, project, fmt, filters, target, with_images=with_images and fmt.archive)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        session.rollback()  # end the read transaction the pages ran in
    return Download(target, download_name(project.id, fmt), fmt.mimetype, temporary=True)


def expire_exports(now: dt.datetime | None = None) -> int:
    """Remove the files of exports past their time (a periodic background job);
    returns how many were removed."""
    now = now or utcnow()
    root = _export_root()
    session = db.session
    ids = list(session.scalars(select(BackgroundJob.id).where(
        BackgroundJob.kind == "export", BackgroundJob.status == "finished", BackgroundJob.expires_at <= now)))
    removed = 0
    for export_id in ids:
        with db.transaction() as session:
            job = session.get(BackgroundJob, export_id, with_for_update=True)
            if job.result.get("expired"):
                continue
            path = root / job.result.get("path", "")
            if path.is_file():
                path.unlink()
            job.result = {**job.result, "expired": True}
            removed += 1
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    for folder in [root / "tmp", *root.glob("project-*")]:
        if not folder.is_dir():
            continue
        for leftover in folder.iterdir():
            stale = leftover.name.startswith((".", "now-")) and leftover.stat().st_mtime < cutoff
            if stale:
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
    db.session.rollback()
    return removed


def export_json(job: BackgroundJob) -> dict[str, Any]:
    """An export as the API and the page show it."""
    expired = job.status == "finished" and is_expired(job)
    fmt = formats.lookup(job.params.get("format", ""))
    return {
        "id": job.id,
        "project": job.project_id,
        "format": job.params.get("format"),
        "format_title": fmt.title if fmt else job.params.get("format"),
        "filters": job.params.get("filters") or {},
        "filters_text": Filters.check(job.params.get("filters") or {}).describe(),
        "with_images": bool(job.params.get("with_images")),
        "status": "expired" if expired else job.status,
        "items_done": job.done,
        "items_total": job.total,
        "result": {k: v for k, v in job.result.items() if k != "path"},
        "error": job.error,
        "errors": job.errors,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at),
        "downloadable": job.status == "finished" and not expired,
    }
