"""Exports through the API, in Label Studio's dialect where shared.

- `GET /api/projects/{id}/export?exportType=JSON|JSON_MIN|CSV|TSV|COCO|YOLO|VOC|CONLL2003`
  (or `export_type`; `download_all_tasks=true`; repeated `ids` or `ids[]`;
  `download_resources=false` leaves the images out of an archive): the file,
  written before answering, as Label Studio does, so label-studio-sdk's
  `projects.exports.download_sync` works. By default only annotated items,
  as in Label Studio.
- `GET /api/projects/{id}/export/formats`: the formats, each with whether it
  is offered for the project's config and why not.
- `GET /api/projects/{id}/consensus?format=jsonl|csv`: our consensus file.
- Background exports, as Label Studio's export snapshots, so label-studio-sdk's
  `projects.exports.create / list / get / convert / download / delete` work:
  - `POST /api/projects/{id}/exports/` (201): Label Studio's body (`title`,
    `task_filter_options`, `annotation_filter_options`, `converted_formats`;
    no format means JSON) and ours (`format` or `export_type`, `only_finished`,
    `only_approved`, `min_confidence`, `annotated_only`, `ids`, `with_images`);
  - `GET .../exports/` (newest first) and `GET .../exports/{export}`: Label
    Studio's fields (`id`, `title`, `created_by`, `created_at`, `finished_at`,
    `status` created / in_progress / completed / failed, `md5`, `counters`,
    `converted_formats`) and ours (`format`, `filters`, `items_done`,
    `items_total`, `expired`, `expires_at`, `download_url`, ...);
  - `POST .../exports/{export}/convert` `{"export_type": "CSV"}` (200,
    `{"export_type", "converted_format"}`): a conversion, listed in the
    export's `converted_formats`;
  - `GET .../exports/{export}/download[?exportType=CSV]`: the file, or the
    file of its conversion to that format;
  - `DELETE .../exports/{export}` (204): the export, its conversions and files.
"""
from __future__ import annotations

from flask import jsonify, request, send_file, url_for
from flask_login import current_user

from ...services import exports
from ...services.errors import Invalid
from ..access import requester_or_operator
from . import bp

FILTER_FIELDS = ("only_finished", "only_approved", "min_confidence", "annotated_only")


def send_download(download: exports.Download):
    response = send_file(download.path, mimetype=download.mimetype, as_attachment=True,
                         download_name=download.filename, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if download.temporary:
        path = download.path
        response.call_on_close(lambda: path.unlink(missing_ok=True))
    return response


def _true(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def offer_json(offer) -> dict:
    fmt = offer.format
    return {"name": fmt.name, "title": fmt.title, "description": fmt.description, "extension": fmt.extension,
            "disabled": not offer.available, "reason": offer.reason, "label_studio": fmt.label_studio}


@bp.route("/projects/<int:project_id>/export", methods=["GET"])
@requester_or_operator
def export_now(project_id: int):
    args = request.args
    ids = args.getlist("ids") + args.getlist("ids[]")
    raw = {name: args.get(name) for name in FILTER_FIELDS}
    raw["annotated_only"] = not _true(args.get("download_all_tasks"))
    raw["ids"] = ids or None
    filters = exports.Filters.check(raw)
    fmt = args.get("exportType") or args.get("export_type") or "JSON"
    download = exports.export_now(current_user.id, project_id, fmt, filters,
                                  with_images=_true(args.get("download_resources"), default=True))
    return send_download(download)


@bp.route("/projects/<int:project_id>/export/formats", methods=["GET"])
@bp.route("/projects/<int:project_id>/export/formats/", methods=["GET"])
@requester_or_operator
def export_formats(project_id: int):
    offers = exports.available_formats(current_user.id, project_id)
    return jsonify([offer_json(o) for o in offers])


@bp.route("/projects/<int:project_id>/consensus", methods=["GET"])
@requester_or_operator
def consensus(project_id: int):
    kind = (request.args.get("format") or "jsonl").lower()
    if kind not in ("jsonl", "csv"):
        raise Invalid(f"format must be jsonl or csv, not {kind!r}", field="format")
    filters = exports.Filters.check({name: request.args.get(name) for name in FILTER_FIELDS})
    download = exports.export_now(current_user.id, project_id, f"CONSENSUS_{kind.upper()}", filters)
    return send_download(download)


def export_body(body: dict) -> dict:
    body = dict(body)
    body["url"] = url_for("api.export_status", project_id=body["project"], export_id=body["id"])
    body["download_url"] = (url_for("api.export_download", project_id=body["project"], export_id=body["id"])
                            if body["downloadable"] else None)
    return body


# What Label Studio's serializer of an export has and a client may send back: read only here.
READ_ONLY = ("id", "created_by", "created_at", "finished_at", "status", "md5", "counters")


@bp.route("/projects/<int:project_id>/exports/", methods=["POST"])
@bp.route("/projects/<int:project_id>/exports", methods=["POST"])
@requester_or_operator
def start_export(project_id: int):
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object: {\"format\": \"JSON\", ...}")
    # Label Studio's filter options (label-studio-sdk's exports.create), then ours, which win.
    raw = exports.label_studio_filters(body.get("task_filter_options"), body.get("annotation_filter_options"))
    raw.update({name: body[name] for name in FILTER_FIELDS if body.get(name) is not None})
    raw["ids"] = body.get("ids")
    filters = exports.Filters.check(raw)
    with_images = body.get("with_images", True)
    if not isinstance(with_images, bool):
        raise Invalid("with_images must be true or false", field="with_images")
    conversions = body.get("converted_formats") or []
    if not isinstance(conversions, list) or not all(isinstance(c, dict) and c.get("export_type")
                                                     for c in conversions):
        raise Invalid('converted_formats must be a list of {"export_type": ...}', field="converted_formats")
    # Label Studio's snapshot is JSON; its SDK names no format when it creates one.
    fmt = body.get("format") or body.get("export_type") or "JSON"
    export_id = exports.start_export(current_user.id, project_id, fmt, filters, with_images=with_images,
                                     title=body.get("title"), conversions=[c["export_type"] for c in conversions])
    response = jsonify(export_body(exports.get_export(current_user.id, project_id, export_id)))
    response.headers["Location"] = url_for("api.export_status", project_id=project_id, export_id=export_id)
    return response, 201


@bp.route("/projects/<int:project_id>/exports/", methods=["GET"])
@bp.route("/projects/<int:project_id>/exports", methods=["GET"])
@requester_or_operator
def list_exports(project_id: int):
    return jsonify([export_body(e) for e in exports.list_exports(current_user.id, project_id)])


@bp.route("/projects/<int:project_id>/exports/<int:export_id>", methods=["GET"])
@bp.route("/projects/<int:project_id>/exports/<int:export_id>/", methods=["GET"])
@requester_or_operator
def export_status(project_id: int, export_id: int):
    return jsonify(export_body(exports.get_export(current_user.id, project_id, export_id)))


@bp.route("/projects/<int:project_id>/exports/<int:export_id>", methods=["DELETE"])
@bp.route("/projects/<int:project_id>/exports/<int:export_id>/", methods=["DELETE"])
@requester_or_operator
def delete_export(project_id: int, export_id: int):
    exports.delete_export(current_user.id, project_id, export_id)
    return "", 204


@bp.route("/projects/<int:project_id>/exports/<int:export_id>/convert", methods=["POST"])
@bp.route("/projects/<int:project_id>/exports/<int:export_id>/convert/", methods=["POST"])
@requester_or_operator
def convert_export(project_id: int, export_id: int):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid('the body must be a JSON object: {"export_type": "CSV"}')
    if not body.get("export_type"):
        raise Invalid("export_type is required: the format to convert to", field="export_type")
    with_images = body.get("download_resources")
    if with_images is not None and not isinstance(with_images, bool):
        raise Invalid("download_resources must be true or false", field="download_resources")
    converted = exports.convert_export(current_user.id, project_id, export_id, body["export_type"],
                                       with_images=with_images)
    fmt = exports.get_export(current_user.id, project_id, converted)["format"]
    return jsonify({"export_type": fmt, "converted_format": converted})


@bp.route("/projects/<int:project_id>/exports/<int:export_id>/download", methods=["GET"])
@bp.route("/projects/<int:project_id>/exports/<int:export_id>/download/", methods=["GET"])
@requester_or_operator
def export_download(project_id: int, export_id: int):
    fmt = request.args.get("exportType") or request.args.get("export_type")
    return send_download(exports.export_file(current_user.id, project_id, export_id, fmt))
