"""Uploading items into a project: files in, validated items out, all or nothing.

`start_import` saves the uploaded files and queues a background job;
`run_import` (the job) reads them as streams in two passes:

1. check every row against the label config, store images, hash each
   item's data and spool the checked rows to a file, recording progress in
   SQL as it goes. Any problem is reported with its file and line, and then
   nothing is written.
2. insert every spooled row in one transaction, which also marks the job
   finished: a crash in between leaves no half import, and a retry redoes it.
   Items the project already holds are found by its unique index here; the
   transaction is then rolled back and they are reported by line.

An upload of more than `IMAGE_CHUNK` images stores them first, in chunks,
with one `store_import_images` background job each, so that every RQ worker
helps; the last chunk queues `finish_import`, which runs the two passes on
the stored images. A chunk that breaks fails the import and removes every
image its chunks stored, as a failed pass 1 does.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
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
_SORTED = orjson.OPT_SORT_KEYS


def canonical_bytes(data: Any) -> bytes:
    """The canonical JSON of an item's data as UTF-8: sorted keys, no spaces.

    orjson writes it ten times faster than the standard library, and the
    same bytes for strings, integers and nested objects; what orjson will
    not write (integers over 64 bits, NaN) falls back to the standard one.
    """
    try:
        return orjson.dumps(data, option=_SORTED)
    except (TypeError, orjson.JSONEncodeError):
        return _CANONICAL.encode(data).encode("utf-8", "surrogatepass")


def compact_json(value: Any) -> str:
    """JSON text without spaces, by orjson where it can (as `canonical_bytes`)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        return _COMPACT.encode(value)


def canonical(data: Any) -> str:
    return canonical_bytes(data).decode("utf-8", "surrogatepass")


def content_hash(data: Any) -> int:
    """The hash that makes an item a duplicate: same data, whatever the key order."""
    return _hash_bytes(canonical_bytes(data))


def _hash_bytes(raw: bytes) -> int:
    return int.from_bytes(_sha256(raw).digest()[:8], "big", signed=True)


_sha256 = hashlib.sha256


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
    # hash -> where first seen, as (file index << 32) | line: a dict of plain
    # ints is one object to the garbage collector, a dict of tuples 100,000.
    seen: dict[int, int] = field(default_factory=dict)
    sources: list["_Source"] = field(default_factory=list)  # by file index
    batch: list[tuple] = field(default_factory=list)  # checked rows not yet spooled
    extras: dict[int, dict] = field(default_factory=dict)
    new_media: list[Path] = field(default_factory=list)
    predictions: int = 0
    annotations: int = 0
    stopped: bool = False
    text_only_keys: tuple[str, ...] | None = None

    def error(self, where: dict, message: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({**where, "message": message})
        else:
            self.stopped = True

    def first_seen(self, digest: int) -> tuple["_Source", int]:
        place = self.seen[digest]
        return self.sources[place >> 32], place & 0xFFFFFFFF


def run_import(job_id: int) -> None:
    """Check and store one import. Safe to run again: a finished import is left alone.

    An upload of many images is shared out: the images go to several
    `store_import_images` background jobs, which any number of workers run
    side by side, and the last of them queues `finish_import` for the rest.
    """
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
        job.params = {key: value for key, value in job.params.items() if key != "images"}
    project = session.get(Project, job.project_id)
    config = labelconfig.parse_config(project.label_config)
    if config.media_keys and _share_out_images(job_id):
        return
    _finish(job, project, config, started)


def _finish(job: BackgroundJob, project: Project, config, started: float,
            images: dict[int, list] | None = None) -> None:
    """Check every row, then write them all or none (see the module's docstring)."""
    job_id = job.id
    gold = bool(job.params.get("gold"))
    # A plain file: NamedTemporaryFile wraps every write in a Python call.
    Path(current_app.config["UPLOAD_ROOT"]).mkdir(parents=True, exist_ok=True)
    spool_path = Path(current_app.config["UPLOAD_ROOT"]) / f"import-{job_id}-{uuid.uuid4().hex}.spool"
    spool = open(spool_path, "w+b")
    found = _Pass()
    if images is not None:  # stored by the image background jobs: forgotten if the import fails
        found.new_media = _created_media(outcome for outcomes in images.values() for outcome in outcomes)
    keep_upload = False
    try:
        _check_all(job, project, config, gold, spool, found, images)
        if found.errors:
            _fail(job_id, found, started)
            return
        spool.seek(0)
        if not _write_all(job_id, project.id, gold, spool, found, started):
            # The unique index refused a row: say which lines the project already holds.
            _check_existing(project.id, found)
            if not found.errors:
                raise Conflict("another upload added some of the same items meanwhile; nothing was stored")
            _fail(job_id, found, started)
    except Exception as error:
        _forget_media(found.new_media)
        _fail(job_id, found, started, unexpected=error)
        keep_upload = True  # a retry from the console reads it again
        raise
    finally:
        spool.close()
        spool_path.unlink(missing_ok=True)
        if not keep_upload:
            shutil.rmtree(job.params.get("folder", ""), ignore_errors=True)


# --- many images: shared out between background jobs -----------------------------

IMAGE_CHUNK = 50  # images per background job: few enough jobs to start, enough for workers to share


def _share_out_images(job_id: int) -> bool:
    """Queue the images of a large upload as chunks for several workers;
    False (nothing queued) for a small one, or one a check already refuses."""
    job = db.session.get(BackgroundJob, job_id)
    lim = limits()
    counts = []
    for entry in job.params["files"]:
        if entry["format"] == "zip":
            try:
                with open(entry["path"], "rb") as fh:
                    counts.append(media.count_zip_images(fh, lim, filename=entry["name"]))
            except media.MediaError:
                return False  # refused with its words by the single pass
        else:
            counts.append(1 if entry["format"] == "image" else 0)
    if sum(counts) <= IMAGE_CHUNK:
        return False
    chunks: list[list[tuple[int, int, int]]] = [[]]
    room = IMAGE_CHUNK
    for index, count in enumerate(counts):
        at = 0
        while at < count:
            if room == 0:
                chunks.append([])
                room = IMAGE_CHUNK
            take = min(room, count - at)
            chunks[-1].append((index, at, at + take))
            at += take
            room -= take
    attempt = uuid.uuid4().hex[:12]
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        job.params = {**job.params, "images": {"attempt": attempt, "chunks": chunks, "done": []}}
        if job.total is None and all(entry["format"] in ("image", "zip") for entry in job.params["files"]):
            job.total = sum(counts)
        rq_id = job.rq_id
    for k in range(len(chunks)):
        enqueue("tasks.jobs.store_import_images", job_id, attempt, k, job_id=f"{rq_id}-images-{attempt}-{k}")
    return True


def _chunk_path(job: BackgroundJob, attempt: str, k: int) -> Path:
    return Path(job.params["folder"]) / f"images-{attempt}-{k:05d}.pickle"


def store_import_images(job_id: int, attempt: str, k: int) -> None:
    """Store chunk `k` of an import's images (a background job). The outcomes
    go to a file beside the upload; the last chunk done queues `finish_import`.
    An internal error fails the whole import and removes what it stored."""
    job = db.session.get(BackgroundJob, job_id)
    plan = job.params.get("images") if job is not None else None
    if plan is None or plan["attempt"] != attempt or job.status != "running":
        return  # finished, failed, or started over since this was queued
    lim, media_root = limits(), current_app.config["MEDIA_ROOT"]
    files = job.params["files"]
    outcomes: list[tuple] = []
    try:
        for index, start, stop in plan["chunks"][k]:
            entry = files[index]
            with open(entry["path"], "rb") as fh:
                try:
                    for member, stored, message in _store_images(fh, entry, media_root, lim, start, stop):
                        outcomes.append((index, member, stored, message))
                except media.MediaError as error:  # a damaged ZIP member: the import fails with its name
                    outcomes.append((index, error.name, None, error.message))
        path = _chunk_path(job, attempt, k)
        with open(path.with_suffix(".tmp"), "wb") as out:
            pickle.dump(outcomes, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(path.with_suffix(".tmp"), path)
    except Exception as error:
        _forget_media(_created_media(outcome[1:] for outcome in outcomes))
        _abandon(job_id, attempt, error)
        raise
    _chunk_done(job_id, attempt, k, len(outcomes))


def _chunk_done(job_id: int, attempt: str, k: int, count: int) -> None:
    with db.transaction() as session:
        # The row lock (SQLite: the write lock) makes exactly one chunk the last.
        job = _locked_job(session, job_id)
        plan = job.params.get("images")
        running = job.status == "running" and plan is not None and plan["attempt"] == attempt
        if running and k not in plan["done"]:
            done = plan["done"] + [k]
            job.params = {**job.params, "images": {**plan, "done": done}}
            job.done = (job.done or 0) + count
        last = running and len(plan["done"]) + 1 == len(plan["chunks"]) and k not in plan["done"]
        rq_id = job.rq_id
    if not running:  # the import failed meanwhile: take back what this chunk stored
        _forget_media(_created_media(outcome[1:] for outcome in _load_chunk(job, attempt, k)))
    elif last:
        enqueue("tasks.jobs.finish_import", job_id, attempt, job_id=f"{rq_id}-finish-{attempt}")


def _locked_job(session, job_id: int) -> BackgroundJob:
    # populate_existing: the row as it is now, not as this session first read it.
    return session.scalars(select(BackgroundJob).where(BackgroundJob.id == job_id).with_for_update()
                           .execution_options(populate_existing=True)).one()


def _load_chunk(job: BackgroundJob, attempt: str, k: int) -> list[tuple]:
    try:
        with open(_chunk_path(job, attempt, k), "rb") as fh:
            return pickle.load(fh)  # our own file, written by store_import_images
    except FileNotFoundError:
        return []


def _created_media(outcomes: Iterable[tuple]) -> list[Path]:
    root = Path(current_app.config["MEDIA_ROOT"])
    return [root / stored[key] for _member, stored, _message in outcomes
            if stored is not None and stored["created"] for key in ("path", "thumb_path")]


def _abandon(job_id: int, attempt: str, error: Exception) -> None:
    """Fail an import whose image chunk hit an internal error, and remove
    every image its chunks stored so far (later chunks remove their own)."""
    db.session.rollback()
    with db.transaction() as session:
        job = _locked_job(session, job_id)
        plan = job.params.get("images")
        if job.status != "running" or plan is None or plan["attempt"] != attempt:
            return
        job.status, job.finished_at, job.errors = "failed", utcnow(), []
        job.error = f"the import stopped on an internal error ({type(error).__name__}); nothing was stored"
        chunks = len(plan["chunks"])
    for k in range(chunks):
        _forget_media(_created_media(outcome[1:] for outcome in _load_chunk(job, attempt, k)))


def finish_import(job_id: int, attempt: str) -> None:
    """After the last image chunk: check and write the import as one pass
    would, from the chunks' outcomes (a background job)."""
    job = db.session.get(BackgroundJob, job_id)
    plan = job.params.get("images") if job is not None else None
    if plan is None or plan["attempt"] != attempt or job.status != "running":
        return
    images: dict[int, list] = {}
    for k in range(len(plan["chunks"])):
        if not _chunk_path(job, attempt, k).exists():
            raise RuntimeError(f"import {job_id}: the outcomes of image chunk {k} are missing")
        for index, member, stored, message in _load_chunk(job, attempt, k):
            images.setdefault(index, []).append((member, stored, message))
    project = db.session.get(Project, job.project_id)
    config = labelconfig.parse_config(project.label_config)
    started = time.monotonic() - (utcnow() - job.started_at).total_seconds()
    _finish(job, project, config, started, images)


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


def _check_all(job: BackgroundJob, project: Project, config, gold: bool, spool, found: _Pass,
               images: dict[int, list] | None = None) -> None:
    """The checking pass. `images` holds, by file index, what the image
    background jobs stored; without it the images are stored here."""
    text_key = config.text_keys[0] if config.text_keys else "text"
    media_key = config.media_keys[0] if config.media_keys else None
    media_root = current_app.config["MEDIA_ROOT"]
    lim = limits()
    allowed_hosts = set(current_app.config.get("ALLOWED_MEDIA_HOSTS", ()))
    found.text_only_keys = _text_only_keys(config)
    next_progress = PROGRESS_EVERY
    for index, entry in enumerate(job.params["files"]):
        name, fmt = entry["name"], entry["format"]
        found.sources.append(_Source(name, entry.get("json_list", False)))
        with open(entry["path"], "rb") as fh:
            if fmt in ("image", "zip"):
                if media_key is None:
                    found.error({"file": name}, "this project's label config shows no image, so images cannot be items")
                    continue
                if images is None:
                    rows = _image_rows(name, media_key, media_root, _store_images(fh, entry, media_root, lim), found)
                else:  # stored already, and their new files already in found.new_media
                    rows = _image_rows(name, media_key, media_root, images.get(index, []), found, track=False)
            else:
                rows = _read(fmt, fh, name, text_key, lim.max_rows)
            try:
                for row in rows:
                    if isinstance(row, readers.RowError):
                        found.error({"file": name, "line": row.line}, row.message)
                    else:
                        _check_row(row, index, config, gold, allowed_hosts, spool, found)
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
    # Items already in the project are found by the unique index as the rows
    # are written (and then reported by line): no look-up pass here.


def _read(fmt: str, fh, name: str, text_key: str, max_rows: int):
    if fmt == "txt":
        return readers.read_txt(fh, name, text_key=text_key, max_rows=max_rows)
    reader = {"json": readers.read_json, "jsonl": readers.read_jsonl,
              "csv": readers.read_csv, "tsv": readers.read_tsv}[fmt]
    return reader(fh, name, max_rows=max_rows)


def _image_rows(name: str, media_key: str, media_root: str, outcomes: Iterable[tuple],
                found: _Pass, track: bool = True) -> Iterator[readers.Row]:
    """Rows for the stored images of one upload, from `_store_images`
    outcomes (made here, or earlier by the image background jobs)."""
    for index, (member, stored, message) in enumerate(outcomes, start=1):
        if stored is None:
            found.error({"file": name, "member": member} if member != name else {"file": name}, message)
            continue
        if track and stored["created"]:
            found.new_media += [Path(media_root) / stored["path"], Path(media_root) / stored["thumb_path"]]
        yield readers.Row(index, {media_key: MEDIA_URL_PREFIX + stored["path"],
                                  "thumbnail": MEDIA_URL_PREFIX + stored["thumb_path"],
                                  "width": stored["width"], "height": stored["height"],
                                  "filename": os.path.basename(member)})


def _store_images(fh, entry: dict, media_root: str, lim: media.Limits, start: int = 0,
                  stop: int | None = None) -> Iterator[tuple[str, dict | None, str | None]]:
    """Verify, orient, thumbnail and store the images of one upload (all, or
    those from `start` to `stop`): (member, stored, None) for each stored
    image, (member, None, why) for each refused one. A ZIP that cannot be
    read on raises `media.MediaError`."""
    name = entry["name"]
    if entry["format"] == "image":
        members = [(name, fh)][start:stop]
    else:
        members = media.iter_zip_images(fh, lim, filename=name, start=start, stop=stop)
    for member, stream in members:
        try:
            # fsync=False: one os.sync() before the rows are committed covers every file.
            stored = media.store_image(stream, member, media_root, lim, fsync=False)
        except media.MediaError as error:
            yield member, None, error.message
            continue
        yield member, {"path": stored.path, "thumb_path": stored.thumb_path, "width": stored.width,
                       "height": stored.height, "created": stored.created}, None


def _text_only_keys(config) -> tuple[str, ...] | None:
    """The data keys of a config that shows only text, for a one-line check
    per row; None when another tag needs `labelconfig.check_data`'s rules."""
    keyed = [o for o in config.objects if o.data_key is not None]
    if all(o.tag in ("Text", "HyperText") for o in keyed):
        return tuple(o.data_key for o in keyed)
    return None


def _all_text(data: dict, keys: tuple[str, ...]) -> bool:
    for key in keys:
        if type(data.get(key)) is not str:
            return False
    return True


def _check_row(row: readers.Row, index: int, config, gold: bool, allowed_hosts: set[str],
               spool, found: _Pass) -> None:
    """Check one row of file `index` and queue it for writing, or report it."""
    data = row.data
    keys = found.text_only_keys
    extras, annotations = None, None
    # The common row (text only, nothing but data) passes a quick test; any
    # other gets the full check, with words for what is wrong.
    if (keys is None or gold or row.predictions or row.annotations or type(data) is not dict
            or not _all_text(data, keys)):
        checked = _check_fully(row, found.sources[index], config, gold, allowed_hosts, found)
        if checked is None:
            return
        extras, annotations = checked
    try:
        raw = orjson.dumps(data, option=_SORTED)
    except (TypeError, orjson.JSONEncodeError):
        raw = canonical_bytes(data)
    if b"\\u0000" in raw or (annotations is not None and "\\u0000" in annotations):
        if _has_nul(data) or _has_nul(row.annotations):  # not a backslash followed by "u0000"
            found.error(found.sources[index].where(row.line),
                        "the item holds a NUL character (\\u0000), which cannot be stored")
            return
    digest = int.from_bytes(_sha256(raw).digest()[:8], "big", signed=True)
    seen = found.seen
    if digest in seen:
        first, line = found.first_seen(digest)
        found.error(found.sources[index].where(row.line),
                    f"duplicate of {first.text(line)}: the same data is already in this upload")
        return
    seen[digest] = (index << 32) | row.line
    found.rows += 1
    found.batch.append((raw.decode("utf-8", "surrogatepass"), digest, annotations))
    if extras:
        found.extras[digest] = extras
    if len(found.batch) >= BATCH:
        _spool_batch(spool, found)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _check_fully(row: readers.Row, source: _Source, config, gold: bool, allowed_hosts: set[str],
                 found: _Pass) -> tuple[dict | None, str | None] | None:
    """Check a row's data, media URLs, gold answer, predictions and
    annotations: (extras, annotations as JSON), or None after reporting."""
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
                annotations = compact_json([_annotation(a, config, where_text) for a in row.annotations])
                found.annotations += len(row.annotations)
    except (labelconfig.DataError, labelconfig.ResultError, Invalid) as error:
        message = str(error)
        prefix = f"{where_text}: "
        found.error(source.where(row.line), message[len(prefix):] if message.startswith(prefix) else message)
        return None
    return extras or None, annotations


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
            source, line = found.first_seen(digest)
            found.error(source.where(line), "duplicate: an item with the same data is already in the project")
    db.session.rollback()


def _progress(job_id: int, done: int) -> None:
    with db.transaction() as session:
        if session.connection().dialect.name == "postgresql":
            # A progress figure lost in a crash costs nothing (the import
            # starts over), so its commit need not wait for the disk.
            session.execute(sa.text("SET LOCAL synchronous_commit = off"))
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


class _Duplicates(Exception):
    """The unique index refused a row: an item already in the project."""


def _write_all(job_id: int, project_id: int, gold: bool, spool, found: _Pass, started: float) -> bool:
    """Insert the spooled rows and finish the job in one transaction.
    False when the project already holds some of the items: nothing written."""
    if found.new_media:
        os.sync()  # the files the rows point at are on disk before the rows are
    db.session.rollback()  # end the checking pass's reads
    try:
        with _bulk_transaction(project_id, job_id) as session:
            insert = _item_inserter(session, project_id, gold, job_id)
            while True:
                try:
                    rows, extras = pickle.load(spool)
                except EOFError:
                    break
                insert(rows)
                if extras:
                    _insert_extras(session, extras, project_id)
            job = session.get(BackgroundJob, job_id)
            job.status = "finished"
            job.done = found.rows
            job.total = found.rows
            job.finished_at = utcnow()
            job.result = {"items": found.rows, "predictions": found.predictions, "annotations": found.annotations,
                          "gold": gold, "seconds": round(time.monotonic() - started, 3)}
    except _Duplicates:
        return False
    db.analyze("item", "prediction", rows=found.rows)
    return True


_COLUMNS = "project_id, data, content_hash, is_gold, import_job_id, imported_annotations, created_at"
_SQLITE_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?").fullmatch


def _item_inserter(session: Session, project_id: int, gold: bool, job_id: int):
    """A function that inserts spooled rows, (data as JSON text, content hash,
    imported annotations as JSON text or None), in the driver's own bulk path:
    SQLAlchemy's per-row parameter processing costs more than the insert
    itself at this volume. What every row of an import shares (project,
    gold, import, timestamp) is written into the statement once, not bound
    on each row: a third of SQLite's per-row cost is binding parameters."""
    connection = session.connection()
    dialect = connection.dialect
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    now = process(utcnow()) if process else utcnow()
    if dialect.name == "postgresql":
        import psycopg

        driver = connection.connection.driver_connection
        head, middle, tail = f"{project_id:d}\t", f"\t{'t' if gold else 'f'}\t{job_id:d}\t", f"\t{now}\n"

        def insert(rows: list[tuple]) -> None:
            try:
                with driver.cursor() as cursor, cursor.copy(f"COPY item ({_COLUMNS}) FROM STDIN") as copy:
                    copy.write(_copy_text(rows, head, middle, tail))
            except psycopg.errors.UniqueViolation:
                raise _Duplicates from None
        return insert

    if not _SQLITE_TIMESTAMP(now):  # only digits and separators go into the SQL text
        raise ValueError(f"unexpected timestamp format {now!r}")
    sql = (f"INSERT INTO item ({_COLUMNS}) "
           f"VALUES ({project_id:d}, ?, ?, {int(gold):d}, {job_id:d}, ?, '{now}')")

    def insert(rows: list[tuple]) -> None:
        try:
            connection.exec_driver_sql(sql, rows)
        except IntegrityError as error:
            if "UNIQUE" not in str(error.orig):
                raise
            raise _Duplicates from None
    return insert


@contextlib.contextmanager
def _bulk_transaction(project_id: int, job_id: int) -> Iterator[Session]:
    """The write transaction of the bulk insert.

    On SQLite the foreign keys of every row (its project, its import) cost
    two look-ups each, a fifth of the insert. The transaction holds the
    write lock from BEGIN IMMEDIATE, so checking both rows once inside it
    proves the same; the pragma only changes outside a transaction, so this
    runs on a connection of its own and restores it before returning it.
    """
    if db.engine.dialect.name != "sqlite":
        with db.transaction() as session:
            _check_parents(session, project_id, job_id)
            yield session
        return
    # Queue with this process's other SQLite writers, as db.transaction() does.
    writer_lock = getattr(db._state, "writer_lock", None) or contextlib.nullcontext()
    with writer_lock, db.engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with Session(bind=connection.execution_options(sqlite_begin="IMMEDIATE")) as session, session.begin():
                _check_parents(session, project_id, job_id)
                yield session
        finally:
            try:
                raw.execute("PRAGMA foreign_keys=ON")
            except Exception:
                connection.invalidate()  # never back to the pool without its foreign keys
                raise


def _check_parents(session, project_id: int, job_id: int) -> None:
    if session.scalar(select(Project.id).where(Project.id == project_id)) is None:
        raise Conflict("the project was deleted while its upload was checked; nothing was stored")
    if session.scalar(select(BackgroundJob.id).where(BackgroundJob.id == job_id)) is None:
        raise Conflict("the import was deleted while it ran; nothing was stored")


def _copy_text(rows: list[tuple], head: str, middle: str, tail: str) -> str:
    """Rows in COPY's text format. Our JSON encoders escape every control
    character, so a backslash is the only byte COPY needs escaped; `head`,
    `middle` and `tail` are the columns every row of an import shares."""
    return "".join([
        f"{head}{text.replace(_BACKSLASH, _BACKSLASHES)}\t{digest}{middle}"
        f"{_NULL if annotations is None else annotations.replace(_BACKSLASH, _BACKSLASHES)}{tail}"
        for text, digest, annotations in rows])


_BACKSLASH, _BACKSLASHES, _NULL = "\\", "\\\\", "\\N"


def _insert_extras(session: Session, extras: dict[int, dict], project_id: int) -> None:
    """The gold answers and predictions of the rows just inserted."""
    from ..models import GoldAnswer, Prediction

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
