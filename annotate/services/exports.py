"""Dataset exports: a project's items, annotations and consensus, as files.

`start_export` records a background job (a `BackgroundJob` of kind "export")
and queues it after the commit; `run_export`, the job, reads the project's
items with their annotations in id order (`export_reading`), hands the tasks
to a streaming writer of `exports/` and records progress, so no export holds
the whole project in memory. The finished file lives
under EXPORT_ROOT until EXPORT_TTL_SECONDS have passed (`expire_exports`
removes it). `export_now` writes the same file before answering, for Label
Studio's synchronous export endpoint.

Background exports are Label Studio's export snapshots to its SDK:
`export_json` gives its fields (status in its words: created, in_progress,
completed, failed; `md5`, `counters`, `converted_formats`) beside ours.
`convert_export` is Label Studio's /convert: a conversion is an export of
its own in another format (a `BackgroundJob` whose params name its
`parent`), with the parent's filters, read from the project when it runs,
listed under the parent and downloaded through it. `delete_export` removes
an export, its conversions and their files. `label_studio_filters` reads
Label Studio's filter options and refuses, in words, the ones we cannot
honour.

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
import hashlib
import logging
import os
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from flask import current_app
from sqlalchemy import select, update

from exports import consensus as consensus_file
from exports import converted, formats, labelstudio
from exports.formats import Format, Offer
from exports.labelstudio import Written
from exports.media import MediaFiles
from exports.pseudonyms import Pseudonyms

from ..extensions import db
from ..labelconfig import parse_config
from ..models import BackgroundJob, Project, User, utcnow
from ..queue import enqueue
from . import projects
from .errors import DomainError, Invalid, NotFound
from .export_reading import Filters, PageCache, TaskReader, consensus_rows, count_items, data_keys, read_connection

log = logging.getLogger(__name__)

PROGRESS_EVERY = 10_000
DEFAULT_TTL_SECONDS = 7 * 24 * 3600
# A synchronous export's file is removed when its response closes; files a crash left go after a day.
STALE_TEMPORARY_SECONDS = 24 * 3600


class Gone(DomainError):
    status = 410


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


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


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
    """Write one export of `project` to `target`: its rows come from one
    streamed statement on a connection of its own (see `export_reading`)."""
    cache = PageCache(session.get_bind().dialect.name)
    try:
        cache.shrink(session.connection())  # CSV's data keys are a pass over the items of their own
        with read_connection() as connection, _objects_frozen():
            return _write_file(session, connection, project, fmt, filters, target, with_images=with_images,
                               on_page=on_page, before_page=lambda: cache.shrink(session.connection()))
    finally:
        cache.restore()


def _write_file(session, connection, project: Project, fmt: Format, filters: Filters, target: Path, *,
                with_images: bool, on_page: Callable[[int], None] | None,
                before_page: Callable[[], None] | None = None) -> Written:
    config = parse_config(project.label_config)
    controls = {c.name: c.tag for c in config.controls}
    if fmt.name in ("CONSENSUS_JSONL", "CONSENSUS_CSV"):
        # Closed before the connection is given back, also when the writer fails halfway: a
        # stream left open would still be reading on a connection someone else may hold.
        with contextlib.closing(consensus_rows(connection, project, filters, on_page)) as rows, \
                open(target, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
            if fmt.name == "CONSENSUS_JSONL":
                return consensus_file.write_jsonl(rows, out)
            return consensus_file.write_csv(rows, out)
    reader = TaskReader(session, connection, project, filters, pseudonyms=Pseudonyms(),
                        predictions=fmt.name == "JSON", label_sets=fmt.converted, on_page=on_page,
                        before_page=before_page)
    keys = data_keys(session, project) if fmt.name in ("CSV", "TSV") else []
    with contextlib.closing(reader.tasks()) as tasks:
        if fmt.converted:
            media = MediaFiles(current_app.config["MEDIA_ROOT"]) if with_images else None
            workdir = target.parent / f".work-{target.name}-{uuid.uuid4().hex}"
            with open(target, "wb") as out:
                return converted.write_converted(fmt.name, project.label_config, tasks, out, workdir,
                                                 formats.converter_data_key(project.label_config), media)
        if fmt.name in ("CSV", "TSV"):
            with open(target, "w", encoding="utf-8", newline="", buffering=1 << 20) as text_out:
                return labelstudio.write_csv(tasks, text_out, controls, keys,
                                             separator="\t" if fmt.name == "TSV" else ",")
        with open(target, "wb", buffering=1 << 20) as out:
            if fmt.name == "JSON":
                return labelstudio.write_json(tasks, out)
            return labelstudio.write_json_min(tasks, out, controls)


def _export_root() -> Path:
    return Path(current_app.config["EXPORT_ROOT"])


def ttl_seconds() -> int:
    return int(current_app.config.get("EXPORT_TTL_SECONDS", DEFAULT_TTL_SECONDS))


def download_name(project_id: int, fmt: Format, export_id: int | None = None) -> str:
    what = "consensus" if fmt.name.startswith("CONSENSUS") else fmt.name.lower().replace("_", "-")
    return f"project-{project_id}-{what}" + (f"-{export_id}" if export_id else "") + f".{fmt.extension}"


# --- background exports -----------------------------------------------------------------------

# A background job's status in Label Studio's words, which its SDK polls for ("completed").
LABEL_STUDIO_STATUS = {"queued": "created", "running": "in_progress", "finished": "completed", "failed": "failed"}
_ONLY_OR_EXCLUDE = (None, "only", "exclude")


def label_studio_filters(task_options: Any, annotation_options: Any) -> dict[str, Any]:
    """Our filter values for Label Studio's `task_filter_options` and
    `annotation_filter_options` (as label-studio-sdk's `exports.create` sends
    them); Invalid names an option we cannot honour instead of ignoring it."""
    values: dict[str, Any] = {}
    for name, options in (("task_filter_options", task_options), ("annotation_filter_options", annotation_options)):
        if options is not None and not isinstance(options, dict):
            raise Invalid(f"{name} must be an object", field=name)
    task_options, annotation_options = task_options or {}, annotation_options or {}
    for key in ("annotated", "finished", "skipped", "reviewed"):
        if task_options.get(key) not in _ONLY_OR_EXCLUDE:
            raise Invalid(f"task_filter_options.{key} must be only, exclude or null, not {task_options[key]!r}",
                          field=f"task_filter_options.{key}")
    if task_options.get("view") is not None:
        raise Invalid("task_filter_options.view names a Data Manager tab, which we do not have: "
                      "choose items with ids instead", field="task_filter_options.view")
    if task_options.get("annotated") == "exclude" or task_options.get("finished") == "exclude":
        key = "annotated" if task_options.get("annotated") == "exclude" else "finished"
        raise Invalid(f"task_filter_options.{key}=exclude is not offered: an export holds labelled work",
                      field=f"task_filter_options.{key}")
    if task_options.get("skipped") == "only":
        raise Invalid("task_filter_options.skipped=only would export nothing: a skipped micro-task leaves no "
                      "annotation here", field="task_filter_options.skipped")
    if task_options.get("reviewed") is not None:
        raise Invalid("task_filter_options.reviewed is not offered: use only_approved for approved work",
                      field="task_filter_options.reviewed")
    if task_options.get("only_with_annotations") or task_options.get("annotated") == "only":
        values["annotated_only"] = True
    if task_options.get("finished") == "only":
        values["only_finished"] = True
    # Every annotation of ours is a usual one (neither skipped nor ground truth), so only a
    # choice that leaves the usual ones out changes anything, and it would leave nothing.
    if annotation_options.get("reviewed") is not None:
        raise Invalid("annotation_filter_options.reviewed is not offered: use only_approved for approved work",
                      field="annotation_filter_options.reviewed")
    if annotation_options.get("usual") is False and (annotation_options.get("ground_truth")
                                                     or annotation_options.get("skipped")):
        raise Invalid("annotation_filter_options asks for ground-truth or skipped annotations only; every "
                      "annotation here is a usual one", field="annotation_filter_options")
    return values


def default_title(project: Project, moment: dt.datetime) -> str:
    """Label Studio's title for an export: the project's title, then when."""
    return f"{project.title.replace(' ', '-')}-at-{moment:%Y-%m-%d-%H-%M}"


def _queue_export(session, user_id: int, project: Project, fmt: Format, filters: Filters, *, with_images: bool,
                  title: str, parent: int | None = None) -> tuple[int, str]:
    rq_id = f"export-{uuid.uuid4().hex}"
    params: dict[str, Any] = {"format": fmt.name, "filters": filters.as_params(),
                              "with_images": bool(with_images and fmt.archive), "title": title}
    if parent is not None:
        params["parent"] = parent
    job = BackgroundJob(rq_id=rq_id, kind="export", project_id=project.id, user_id=user_id, params=params)
    session.add(job)
    session.flush()
    return job.id, rq_id


def start_export(user_id: int, project_id: int, format_name: Any, filters: Filters, *,
                 with_images: bool = True, title: str | None = None, conversions: Sequence[Any] = ()) -> int:
    """Record an export, and its conversions to other formats if asked (see
    `convert_export`), and queue them; return the export's id."""
    if title is not None and (not isinstance(title, str) or len(title) > 2048):
        raise Invalid("title must be text of at most 2048 characters", field="title")
    with db.transaction() as session:
        project = projects.visible_project(session, session.get(User, user_id), project_id)
        fmt = _offered(project, format_name)
        title = (title or "").strip() or default_title(project, utcnow())
        queued = [_queue_export(session, user_id, project, fmt, filters, with_images=with_images, title=title)]
        others = {fmt.name}
        for name in conversions:
            other = _offered(project, name)
            if other.name not in others:
                others.add(other.name)
                queued.append(_queue_export(session, user_id, project, other, filters, with_images=with_images,
                                            title=title, parent=queued[0][0]))
    for job_id, rq_id in queued:  # after the commit that the background jobs read
        enqueue("tasks.exports.run_export", job_id, job_id=rq_id)
    return queued[0][0]


def _parent_of(job: BackgroundJob) -> int | None:
    return job.params.get("parent")


def _conversions(session, project_id: int, export_ids: list[int]) -> dict[int, list[BackgroundJob]]:
    """The conversions of each export, oldest first."""
    if not export_ids:
        return {}
    parent = BackgroundJob.params["parent"].as_integer()
    found: dict[int, list[BackgroundJob]] = {}
    for job in session.scalars(select(BackgroundJob).where(
            BackgroundJob.project_id == project_id, BackgroundJob.kind == "export",
            parent.in_(export_ids)).order_by(BackgroundJob.id)):
        found.setdefault(_parent_of(job), []).append(job)
    return found


def convert_export(user_id: int, project_id: int, export_id: int, format_name: Any, *,
                   with_images: bool | None = None) -> int:
    """Queue a conversion of an export to another format, as Label Studio's
    /convert does; return the conversion's id. It is an export of its own,
    with the same filters, read from the project when it runs, listed in the
    export's `converted_formats` and downloaded through the export."""
    with db.transaction() as session:
        export = _export_of(session, user_id, project_id, export_id)
        if _parent_of(export) is not None:
            raise Invalid(f"export {export_id} is a conversion of export {_parent_of(export)}: "
                          f"convert that one", field="export_type")
        project = session.get(Project, project_id)
        fmt = _offered(project, format_name)
        own = formats.lookup(export.params.get("format", ""))
        if own is not None and own.name == fmt.name:
            raise Invalid(f"export {export_id} is {fmt.name} already: download it as it is", field="export_type")
        for earlier in _conversions(session, project_id, [export_id]).get(export_id, []):
            if earlier.params.get("format") != fmt.name:
                continue
            if earlier.status != "failed":
                raise Invalid(f"Conversion to {fmt.name} already started", field="export_type")
            session.delete(earlier)  # a failed conversion makes way for a new one, as in Label Studio
        # Our stored images go into an archive unless asked not to (download_resources=false).
        job_id, rq_id = _queue_export(session, user_id, project, fmt,
                                      Filters.check(export.params.get("filters") or {}),
                                      with_images=with_images is not False,
                                      title=export.params.get("title") or default_title(project, export.created_at),
                                      parent=export_id)
    enqueue("tasks.exports.run_export", job_id, job_id=rq_id)
    return job_id


def _progress(job_id: int, done: int) -> None:
    with db.transaction() as session:
        session.execute(update(BackgroundJob).where(BackgroundJob.id == job_id).values(done=done))


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # a checksum, as Label Studio gives, not a secret
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_export(job_id: int) -> None:
    """Write one export. Safe to run again: a finished export is left alone,
    a failed one starts over, a deleted one is not written."""
    session = db.session
    job = session.get(BackgroundJob, job_id)
    if job is None:  # deleted, or its project was, meanwhile: nothing to write
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
        if job is None:
            return
        job.status, job.started_at, job.done, job.error = "running", utcnow(), 0, None
        job.total = count_items(session, project.id, filters)
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
        md5 = _md5(part)
        os.replace(part, folder / name)
    except Exception as error:
        part.unlink(missing_ok=True)
        session.rollback()
        with db.transaction() as session:
            job = session.get(BackgroundJob, job_id)
            if job is not None:
                job.status, job.finished_at = "failed", utcnow()
                job.error = f"the export stopped on an internal error ({type(error).__name__}); try again"
        log.exception("export %s of project %s failed", job_id, project.id)
        raise
    now = utcnow()
    with db.transaction() as session:
        job = session.get(BackgroundJob, job_id)
        if job is None:  # deleted while it was written
            (folder / name).unlink(missing_ok=True)
            return
        job.status, job.finished_at = "finished", now
        job.done = written.items if fmt.name.startswith("CONSENSUS") else (job.total or 0)
        job.expires_at = now + dt.timedelta(seconds=ttl_seconds())
        job.result = {"path": f"project-{project.id}/{name}", "filename": download_name(project.id, fmt, job_id),
                      "mimetype": fmt.mimetype, "size": (folder / name).stat().st_size, "format": fmt.name,
                      "md5": md5, "seconds": round(time.monotonic() - started, 3), **written.as_dict()}


def _export_of(session, user_id: int, project_id: int, export_id: int) -> BackgroundJob:
    projects.visible_project(session, session.get(User, user_id), project_id)
    job = session.get(BackgroundJob, export_id)
    if job is None or job.project_id != project_id or job.kind != "export":
        raise NotFound(f"no export {export_id} in project {project_id}")
    return job


def _described(session, jobs: list[BackgroundJob]) -> list[dict[str, Any]]:
    if not jobs:
        return []
    conversions = _conversions(session, jobs[0].project_id, [j.id for j in jobs])
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_({j.user_id for j in jobs if j.user_id})))}
    return [export_json(job, conversions.get(job.id, []), users.get(job.user_id)) for job in jobs]


def get_export(user_id: int, project_id: int, export_id: int) -> dict[str, Any]:
    """One export as the API and the page show it (see `export_json`)."""
    session = db.session
    return _described(session, [_export_of(session, user_id, project_id, export_id)])[0]


def list_exports(user_id: int, project_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The project's exports, newest first, each with its conversions (which are not listed apart)."""
    session = db.session
    projects.visible_project(session, session.get(User, user_id), project_id)
    jobs = list(session.scalars(select(BackgroundJob).where(
        BackgroundJob.project_id == project_id, BackgroundJob.kind == "export",
        BackgroundJob.params["parent"].as_integer().is_(None))
        .order_by(BackgroundJob.id.desc()).limit(limit)))
    return _described(session, jobs)


def _files(jobs: list[BackgroundJob]) -> list[Path]:
    root = _export_root()
    return [root / job.result["path"] for job in jobs if job.result.get("path")]


def delete_export(user_id: int, project_id: int, export_id: int) -> None:
    """Remove an export, its conversions and their files, as Label Studio's DELETE does.
    One still being written is never finished: its background job finds it gone."""
    with db.transaction() as session:
        job = _export_of(session, user_id, project_id, export_id)
        doomed = [job, *_conversions(session, project_id, [export_id]).get(export_id, [])]
        files = _files(doomed)
        for each in doomed:
            session.delete(each)
    for path in files:  # after the commit: a failed delete keeps its files
        path.unlink(missing_ok=True)
    log.info("user %s deleted export %s of project %s", user_id, export_id, project_id)


def is_expired(job: BackgroundJob, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return bool(job.result.get("expired")) or (job.expires_at is not None and job.expires_at <= now)


@dataclass(frozen=True)
class Download:
    path: Path
    filename: str
    mimetype: str
    temporary: bool = False  # remove the file once it is sent


def _file_of(job: BackgroundJob) -> Download:
    if job.status != "finished":
        raise NotFound(f"export {job.id} is {job.status}: there is nothing to download yet"
                       if job.status in ("queued", "running") else f"export {job.id} failed: {job.error}")
    if is_expired(job):
        raise Gone(f"export {job.id} expired on {job.expires_at:%Y-%m-%d %H:%M} UTC; start a new one")
    path = _export_root() / job.result["path"]
    if not path.is_file():
        raise Gone(f"the file of export {job.id} is gone; start a new one")
    return Download(path, job.result["filename"], job.result["mimetype"])


def export_file(user_id: int, project_id: int, export_id: int, format_name: Any = None) -> Download:
    """The file of a finished export that has not expired; with `format_name`
    (Label Studio's `exportType`), the file of its conversion to that format."""
    session = db.session
    job = _export_of(session, user_id, project_id, export_id)
    if format_name in (None, ""):
        return _file_of(job)
    fmt = formats.lookup(str(format_name))
    if fmt is None:
        names = ", ".join(formats.FORMATS)
        raise Invalid(f"unknown export format {format_name!r}; formats are {names}", field="exportType")
    if fmt.name == job.params.get("format"):
        return _file_of(job)
    conversion = next((c for c in reversed(_conversions(session, project_id, [export_id]).get(export_id, []))
                       if c.params.get("format") == fmt.name), None)
    if conversion is None:
        raise NotFound(f"{fmt.name} format is not converted yet: export {export_id} is "
                       f"{job.params.get('format')}; convert it first (POST .../exports/{export_id}/convert)")
    return _file_of(conversion)


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
            if job is None or job.result.get("expired"):  # deleted meanwhile, or done already
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


def _user_simple(user: User | None) -> dict[str, Any] | None:
    # Label Studio's UserSimple; `username` is the only field its SDK requires.
    if user is None:
        return None
    return {"id": user.id, "username": user.email, "email": user.email, "first_name": user.name, "last_name": "",
            "avatar": None}


def export_json(job: BackgroundJob, conversions: Sequence[BackgroundJob] = (), creator: User | None = None
                ) -> dict[str, Any]:
    """An export as the API and the page show it: Label Studio's fields (id,
    title, created_by, created_at, finished_at, status, md5, counters,
    converted_formats) and ours (format, filters, progress, expiry)."""
    expired = job.status == "finished" and is_expired(job)
    fmt = formats.lookup(job.params.get("format", ""))
    result = job.result or {}
    finished = job.status == "finished"
    return {
        "id": job.id,
        "title": job.params.get("title") or "",
        "created_by": _user_simple(creator),
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
        "status": LABEL_STUDIO_STATUS.get(job.status, job.status),
        "md5": result.get("md5"),
        "counters": ({"task_number": result.get("items", 0), "annotation_number": result.get("annotations", 0)}
                     if finished else {"task_number": job.done}),
        "converted_formats": [{"id": c.id, "status": LABEL_STUDIO_STATUS.get(c.status, c.status),
                               "export_type": c.params.get("format"), "traceback": c.error,
                               "expired": c.status == "finished" and is_expired(c)}
                              for c in conversions],
        "project": job.project_id,
        "format": job.params.get("format"),
        "format_title": fmt.title if fmt else job.params.get("format"),
        "converted_from": _parent_of(job),
        "filters": job.params.get("filters") or {},
        "filters_text": Filters.check(job.params.get("filters") or {}).describe(),
        "with_images": bool(job.params.get("with_images")),
        "expired": expired,
        "items_done": job.done,
        "items_total": job.total,
        "result": {k: v for k, v in result.items() if k != "path"},
        "error": job.error,
        "errors": job.errors,
        "expires_at": _iso(job.expires_at),
        "downloadable": finished and not expired,
    }
