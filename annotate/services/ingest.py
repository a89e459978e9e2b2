"""Uploading items into a project: files in, validated items out, all or nothing.

`start_import` saves the uploaded files and queues a background job;
`run_import` (the job) reads them as streams in two passes:

1. check every row against the label config, store images, hash each
   item's data and spool the checked rows to a file, recording progress in
   SQL as it goes. Any problem is reported with its file and line, and then
   nothing is written.
2. insert every spooled row in one transaction, which also marks the job
   finished: a crash in between leaves no half import, and a retry redoes it.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.utils import secure_filename

from .. import labelconfig, media, readers
from ..extensions import db
from ..models import BackgroundJob, Item, Project, User, utcnow
from ..models.base import UTCDateTime
from ..queue import enqueue
from . import projects
from .errors import Conflict, Invalid, NotFound

log = logging.getLogger(__name__)

BATCH = 2000
PROGRESS_EVERY = 5000
MAX_REPORTED_ERRORS = 100
MEDIA_URL_PREFIX = "/media/"


def limits() -> media.Limits:
    config = current_app.config
    return media.Limits(
        max_file_bytes=config.get("MAX_IMAGE_BYTES", media.Limits.max_file_bytes),
        max_pixels=config.get("MAX_IMAGE_PIXELS", media.Limits.max_pixels),
        max_rows=config.get("MAX_IMPORT_ROWS", media.Limits.max_rows),
    )


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical(data: Any) -> str:
    return _CANONICAL.encode(data)


def content_hash(data: Any) -> int:
    """The hash that makes an item a duplicate: same data, whatever the key order."""
    return _hash_text(canonical(data))


def _hash_text(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


# --- starting an import ------------------------------------------------------


def start_import(user_id: int, project_id: int, uploads: Iterable[tuple[str, IO[bytes]]],
                 *, gold: bool = False) -> int:
    """Save the uploads and queue their import; return the import's job id."""
    session = db.session
    user = session.get(User, user_id)
    projects.visible_project(session, user, project_id)
    folder = Path(current_app.config["UPLOAD_ROOT"]) / f"import-{uuid.uuid4().hex}"
    files = []
    try:
        for index, (filename, stream) in enumerate(uploads):
            try:
                fmt = readers.detect_format(filename)
            except readers.UnsupportedFormat as error:
                raise Invalid(str(error), field="file") from None
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{index:05d}-{secure_filename(filename) or 'upload'}"
            with open(path, "wb") as out:
                shutil.copyfileobj(stream, out, 1024 * 1024)
            files.append({"name": filename, "path": str(path), "format": fmt})
        if not files:
            raise Invalid("choose at least one file to upload", field="file")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _queue_import(user_id, project_id, files, gold, folder)


def import_json_now(user_id: int, project_id: int, tasks: list[Any], *, gold: bool = False) -> int:
    """Import tasks sent as a JSON list in the request body, before answering,
    as Label Studio's API does; the import is recorded like any other."""
    if not isinstance(tasks, list):
        raise Invalid("the body must be a JSON list of tasks", field="tasks")
    session = db.session
    projects.visible_project(session, session.get(User, user_id), project_id)
    folder = Path(current_app.config["UPLOAD_ROOT"]) / f"import-{uuid.uuid4().hex}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "00000-request.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for task in tasks:
            out.write(json.dumps(task, ensure_ascii=False))
            out.write("\n")
    files = [{"name": "request body", "path": str(path), "format": "jsonl", "json_list": True}]
    job_id = _queue_import(user_id, project_id, files, gold, folder, run_now=True)
    run_import(job_id)
    return job_id


def _queue_import(user_id: int, project_id: int, files: list[dict], gold: bool, folder: Path,
                  *, run_now: bool = False) -> int:
    rq_id = f"import-{uuid.uuid4().hex}"
    try:
        with db.transaction() as session:
            job = BackgroundJob(rq_id=rq_id, kind="import", project_id=project_id, user_id=user_id,
                                params={"files": files, "gold": gold, "folder": str(folder)})
            session.add(job)
            session.flush()
            job_id = job.id
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if not run_now:
        enqueue("tasks.jobs.run_import", job_id, job_id=rq_id)
    return job_id


# --- the background job --------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One uploaded file, for saying where a problem is."""

    name: str
    json_list: bool = False  # a JSON body sent to the API: rows are its items

    def text(self, line: int) -> str:
        return f"item {line}" if self.json_list else f"{self.name}, line {line}"

    def where(self, line: int) -> dict:
        return {"item": line} if self.json_list else {"file": self.name, "line": line}


@dataclass
class _Pass:
    """What the checking pass found."""

    rows: int = 0
    errors: list[dict] = field(default_factory=list)
    seen: dict[int, tuple["_Source", int]] = field(default_factory=dict)  # hash -> where first seen
    batch: list[tuple] = field(default_factory=list)  # checked rows not yet spooled
    extras: dict[int, dict] = field(default_factory=dict)
    new_media: list[Path] = field(default_factory=list)
    predictions: int = 0
    annotations: int = 0
    stopped: bool = False

    def error(self, where: dict, message: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({**where, "message": message})
        else:
            self.stopped = True


def run_import(job_id: int) -> None:
    """Check and store one import. Safe to run again: a finished import is left alone."""
    session = db.session
    job = session.get(BackgroundJob, job_id)
    if job is None:
        raise NotFound(f"no import {job_id}")
    # Done, or refused for problems in the upload: a retry would change nothing.
    # After an internal error (job.errors empty) a retry starts over.
    if job.status == "finished" or (job.status == "failed" and job.errors):
        return
    started = time.monotonic()
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        job.status, job.started_at, job.done, job.errors = "running", utcnow(), 0, []
        job.total = _count_rows(job.params["files"])
    project = session.get(Project, job.project_id)
    config = labelconfig.parse_config(project.label_config)
    gold = bool(job.params.get("gold"))
    # A plain file: NamedTemporaryFile wraps every write in a Python call.
    Path(current_app.config["UPLOAD_ROOT"]).mkdir(parents=True, exist_ok=True)
    spool_path = Path(current_app.config["UPLOAD_ROOT"]) / f"import-{job_id}-{uuid.uuid4().hex}.spool"
    spool = open(spool_path, "w+b")
    found = _Pass()
    try:
        _check_all(job, project, config, gold, spool, found)
        if found.errors:
            _fail(job_id, found, started)
            return
        spool.seek(0)
        _write_all(job_id, project.id, gold, spool, found, started)
    except Exception as error:
        _forget_media(found.new_media)
        _fail(job_id, found, started, unexpected=error)
        raise
    finally:
        spool.close()
        spool_path.unlink(missing_ok=True)
        shutil.rmtree(job.params.get("folder", ""), ignore_errors=True)


def _count_rows(files: list[dict]) -> int | None:
    """Rows in the uploads, when a cheap count exists, for the progress bar."""
    total = 0
    for entry in files:
        fmt = entry["format"]
        if fmt == "image":
            total += 1
        elif fmt in ("jsonl", "txt", "csv", "tsv"):
            lines = 0
            with open(entry["path"], "rb") as fh:
                last = b"\n"
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    lines += chunk.count(b"\n")
                    last = chunk[-1:]
            lines += last != b"\n"
            total += lines - (fmt in ("csv", "tsv"))
        else:
            return None
    return total


def _check_all(job: BackgroundJob, project: Project, config, gold: bool, spool, found: _Pass) -> None:
    text_key = config.text_keys[0] if config.text_keys else "text"
    media_key = config.media_keys[0] if config.media_keys else None
    media_root = current_app.config["MEDIA_ROOT"]
    lim = limits()
    allowed_hosts = set(current_app.config.get("ALLOWED_MEDIA_HOSTS", ()))
    next_progress = PROGRESS_EVERY
    for entry in job.params["files"]:
        name, fmt = entry["name"], entry["format"]
        source = _Source(name, entry.get("json_list", False))
        with open(entry["path"], "rb") as fh:
            if fmt in ("image", "zip"):
                if media_key is None:
                    found.error({"file": name}, "this project's label config shows no image, so images cannot be items")
                    continue
                rows = _image_rows(fh, name, fmt, media_key, media_root, lim, found)
            else:
                rows = _read(fmt, fh, name, text_key, lim.max_rows)
            try:
                for row in rows:
                    if isinstance(row, readers.RowError):
                        found.error({"file": name, "line": row.line}, row.message)
                    else:
                        _check_row(row, source, config, gold, allowed_hosts, spool, found)
                    if found.stopped:
                        return
                    if found.rows >= next_progress:
                        _progress(job.id, found.rows)
                        next_progress += PROGRESS_EVERY
            except readers.RowError as error:  # the file cannot be read past this line
                found.error({"file": name, "line": error.line}, error.message)
            except media.MediaError as error:
                found.error({"file": name, "member": error.name} if error.name != name else {"file": name},
                            error.message)
    _spool_batch(spool, found)
    _check_existing(project.id, found)


def _read(fmt: str, fh, name: str, text_key: str, max_rows: int):
    if fmt == "txt":
        return readers.read_txt(fh, name, text_key=text_key, max_rows=max_rows)
    reader = {"json": readers.read_json, "jsonl": readers.read_jsonl,
              "csv": readers.read_csv, "tsv": readers.read_tsv}[fmt]
    return reader(fh, name, max_rows=max_rows)


def _image_rows(fh, name: str, fmt: str, media_key: str, media_root: str, lim: media.Limits,
                found: _Pass) -> Iterator[readers.Row]:
    members = [(name, fh)] if fmt == "image" else media.iter_zip_images(fh, lim, filename=name)
    for index, (member, stream) in enumerate(members, start=1):
        data = stream.read(lim.max_file_bytes + 1)
        sha = hashlib.sha256(data).hexdigest()
        existed = any((Path(media_root) / sha[:2] / sha[2:4] / f"{sha}{ext}").exists()
                      for ext in (".jpg", ".png", ".webp"))
        try:
            stored = media.store_image(io.BytesIO(data), member, media_root, lim, fsync=False)
        except media.MediaError as error:
            found.error({"file": name, "member": member} if member != name else {"file": name},
                        error.message)
            continue
        if not existed:
            found.new_media += [Path(media_root) / stored.path, Path(media_root) / stored.thumb_path]
        yield readers.Row(index, {media_key: MEDIA_URL_PREFIX + stored.path,
                                  "thumbnail": MEDIA_URL_PREFIX + stored.thumb_path,
                                  "width": stored.width, "height": stored.height,
                                  "filename": os.path.basename(member)})


def _check_row(row: readers.Row, source: _Source, config, gold: bool, allowed_hosts: set[str],
               spool, found: _Pass) -> None:
    data = row.data
    where_text = source.text(row.line)
    try:
        labelconfig.check_data(config, data, where_text)
        for key in config.media_keys:
            _check_media_url(data.get(key), key, allowed_hosts)
        extras: dict[str, Any] = {}
        annotations = None
        if gold:
            extras["gold"] = _gold_answer(row, config, where_text)
        else:
            if row.predictions:
                extras["predictions"] = [_prediction(p, config, where_text) for p in row.predictions]
                found.predictions += len(row.predictions)
            if row.annotations:
                annotations = _COMPACT.encode([_annotation(a, config, where_text) for a in row.annotations])
                found.annotations += len(row.annotations)
    except (labelconfig.DataError, labelconfig.ResultError, Invalid) as error:
        message = str(error)
        prefix = f"{where_text}: "
        found.error(source.where(row.line), message[len(prefix):] if message.startswith(prefix) else message)
        return
    text = canonical(data)
    digest = _hash_text(text)
    first = found.seen.get(digest)
    if first is not None:
        found.error(source.where(row.line),
                    f"duplicate of {first[0].text(first[1])}: the same data is already in this upload")
        return
    found.seen[digest] = (source, row.line)
    found.rows += 1
    found.batch.append((text, digest, annotations))
    if extras:
        found.extras[digest] = extras
    if len(found.batch) >= BATCH:
        _spool_batch(spool, found)


def _spool_batch(spool, found: _Pass) -> None:
    """Checked rows go to the spool a batch at a time, pickled: the writing
    pass then hands each batch to the driver with no per-row Python work.
    The spool is our own temporary file, never something a user sent."""
    if found.batch:
        pickle.dump((found.batch, found.extras), spool, protocol=pickle.HIGHEST_PROTOCOL)
        found.batch, found.extras = [], {}


def _check_media_url(value: Any, key: str, allowed_hosts: set[str]) -> None:
    """Images are our own media or come from hosts an operator allows: the
    annotator's browser fetches them, and we never fetch them ourselves."""
    for url in value if isinstance(value, list) else [value]:
        if not isinstance(url, str) or url.startswith(MEDIA_URL_PREFIX):
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(f'"{key}" must be one of our /media/ paths or an http(s) URL, not {url[:80]!r}')
        if parts.hostname not in allowed_hosts:
            allowed = ", ".join(sorted(allowed_hosts)) or "none yet"
            raise Invalid(f'"{key}" points at {parts.hostname}, which is not an allowed media host '
                          f"(allowed: {allowed}; operators set ALLOWED_MEDIA_HOSTS)")


def _result_of(entry: Any, what: str, where: str) -> list:
    if isinstance(entry, dict) and "result" in entry:
        return entry["result"]
    raise Invalid(f"{where}: each of the {what} must be an object with a \"result\" list")


def _gold_answer(row: readers.Row, config, where: str) -> dict:
    if row.predictions:
        raise Invalid(f"{where}: gold items never carry predictions; remove them from the gold upload")
    if not row.annotations:
        raise Invalid(f"{where}: a gold item needs its answer, as an annotation with a result")
    answer = row.annotations[0]
    result = _result_of(answer, "annotations", where)
    labelconfig.validate_result(config, result, where)
    if not result:
        raise Invalid(f"{where}: the gold answer is empty")
    explanation = answer.get("explanation") or (answer.get("meta") or {}).get("explanation") or ""
    return {"result": result, "explanation": str(explanation)}


def _prediction(entry: Any, config, where: str) -> dict:
    result = _result_of(entry, "predictions", where)
    labelconfig.validate_result(config, result, f"{where}, prediction")
    score = entry.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise Invalid(f"{where}: a prediction's score must be a number, not {score!r}")
    return {"result": result, "score": score, "model_version": str(entry.get("model_version") or "")}


def _annotation(entry: Any, config, where: str) -> dict:
    result = _result_of(entry, "annotations", where)
    labelconfig.validate_result(config, result, f"{where}, annotation")
    kept = {"result": result}
    for key in ("completed_by", "created_at", "lead_time", "was_cancelled"):
        if key in entry:
            kept[key] = entry[key]
    return kept


def _check_existing(project_id: int, found: _Pass) -> None:
    """Items already in the project are duplicates too (indexed look-ups, in batches)."""
    hashes = list(found.seen)
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        # One array parameter per batch: thousands of bound IN values cost more to send than to look up.
        sql, size = "SELECT content_hash FROM item WHERE project_id = %s AND content_hash = ANY(%s)", 20000
        batches = ((sql, (project_id, hashes[i:i + size])) for i in range(0, len(hashes), size))
    else:
        size = 2000
        batches = ((f"SELECT content_hash FROM item WHERE project_id = ? AND content_hash IN "
                    f"({','.join('?' * len(hashes[i:i + size]))})", (project_id, *hashes[i:i + size]))
                   for i in range(0, len(hashes), size))
    for sql, params in batches:
        for (digest,) in connection.exec_driver_sql(sql, params):
            source, line = found.seen[digest]
            found.error(source.where(line), "duplicate: an item with the same data is already in the project")
    db.session.rollback()


def _progress(job_id: int, done: int) -> None:
    with db.transaction() as session:
        session.execute(update(BackgroundJob).where(BackgroundJob.id == job_id).values(done=done))


def _fail(job_id: int, found: _Pass, started: float, unexpected: Exception | None = None) -> None:
    _forget_media(found.new_media)
    db.session.rollback()
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        job.status = "failed"
        job.finished_at = utcnow()
        job.errors = found.errors
        if unexpected is not None:
            job.error = f"the import stopped on an internal error ({type(unexpected).__name__}); nothing was stored"
        else:
            more = " (only the first 100 are listed)" if found.stopped else ""
            job.error = f"{len(found.errors)} problem{'s' if len(found.errors) != 1 else ''} found{more}; nothing was stored"
        job.result = {"seconds": round(time.monotonic() - started, 3)}


def _forget_media(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _write_all(job_id: int, project_id: int, gold: bool, spool, found: _Pass, started: float) -> None:
    if found.new_media:
        os.sync()  # the files the rows point at are on disk before the rows are
    with db.transaction() as session:
        connection = session.connection()
        dialect = connection.dialect
        # The driver's own executemany: SQLAlchemy's per-row parameter
        # processing costs more than the insert itself at this volume. The
        # data goes in as the JSON text already made for its hash.
        if dialect.name == "postgresql":
            # COPY streams the rows in one command instead of a round trip each.
            sql = ("COPY item (project_id, data, content_hash, is_gold, import_job_id, imported_annotations, "
                   "created_at) FROM STDIN")
        else:
            sql = ("INSERT INTO item (project_id, data, content_hash, is_gold, import_job_id, imported_annotations, "
                   "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        now = UTCDateTime().bind_processor(dialect)(utcnow())
        while True:
            try:
                rows, extras = pickle.load(spool)
            except EOFError:
                break
            batch = [(project_id, text, digest, gold, job_id, annotations, now) for text, digest, annotations in rows]
            _insert_batch(session, sql, batch, extras, project_id)
        job = session.get(BackgroundJob, job_id)
        job.status = "finished"
        job.done = found.rows
        job.total = found.rows
        job.finished_at = utcnow()
        job.result = {"items": found.rows, "predictions": found.predictions, "annotations": found.annotations,
                      "gold": gold, "seconds": round(time.monotonic() - started, 3)}


def _insert_batch(session, sql: str, batch: list[tuple], extras: dict[int, dict], project_id: int) -> None:
    from ..models import GoldAnswer, Prediction

    try:
        connection = session.connection()
        if sql.startswith("COPY"):
            with connection.connection.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            connection.exec_driver_sql(sql, batch)
    except IntegrityError:
        raise Conflict("another upload added some of the same items meanwhile; nothing was stored") from None
    if not extras:
        return
    ids = dict(session.execute(
        select(Item.content_hash, Item.id).where(Item.project_id == project_id, Item.content_hash.in_(list(extras)))
    ).all())
    gold_rows, prediction_rows = [], []
    for digest, extra in extras.items():
        item_id = ids[digest]
        if "gold" in extra:
            gold_rows.append({"item_id": item_id, **extra["gold"]})
        for prediction in extra.get("predictions", ()):
            prediction_rows.append({"item_id": item_id, **prediction})
    if gold_rows:
        session.execute(sa.insert(GoldAnswer), gold_rows)
    if prediction_rows:
        session.execute(sa.insert(Prediction), prediction_rows)


def get_import(user_id: int, project_id: int, job_id: int) -> BackgroundJob:
    session = db.session
    projects.visible_project(session, session.get(User, user_id), project_id)
    job = session.get(BackgroundJob, job_id)
    if job is None or job.project_id != project_id or job.kind != "import":
        raise NotFound(f"no import {job_id} in project {project_id}")
    return job


def list_imports(user_id: int, project_id: int) -> list[BackgroundJob]:
    session = db.session
    projects.visible_project(session, session.get(User, user_id), project_id)
    return list(session.scalars(select(BackgroundJob).where(
        BackgroundJob.project_id == project_id, BackgroundJob.kind == "import").order_by(BackgroundJob.id.desc())))


def item_ids_of_import(job_id: int) -> list[int]:
    return list(db.session.scalars(select(Item.id).where(Item.import_job_id == job_id).order_by(Item.id)))
