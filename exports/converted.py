"""COCO, YOLO, Pascal VOC and CoNLL 2003, as label-studio-sdk's `Converter` writes them.

COCO, YOLO and VOC are written here, not by the converter, which holds the
whole project in memory (COCO's image and annotation lists, and for every
format the parsed input). They read the tasks one at a time with the
converter's own pieces (its categories, `convert_annotation_to_yolo`, box,
polygon and keypoint arithmetic) and write each item's file into the ZIP
archive as they go, so memory stays flat however big the project:

- COCO appends each image and annotation to a file of its own and joins the
  files into `result.json` at the end. Its `file_name` is the name in the
  archive for a stored image of ours, or the item's own value for any other.
- YOLO writes `labels/<name>.txt` per item (one line per label of each box
  or polygon, normalised to [0, 1]) and then `classes.txt` and `notes.json`.
- VOC writes `Annotations/<name>.xml` per item with boxes; its size is the
  one the first region was drawn on, and its depth 3.

An item's YOLO or VOC file is the one the converter would leave: of its
annotations that were not cancelled, newest first, the last one with regions
(the converter writes each and overwrites). An item without regions gets an
empty YOLO file (none when all its annotations were cancelled) and no VOC
file. `<name>` is the item's id with the image's suffix:

- a stored image of ours (a value under /media/ that `MediaFiles.resolve`
  accepts) goes into the archive as `images/<item id><suffix>`, read from the
  checked real file;
- anything else (an http URL, a path outside the media root, a missing file)
  is never read nor fetched, and gets the suffix `safe_suffix` finds in it.

The archive is written front to back by `_Archive`, which keeps each
member's directory record in a file rather than in memory.

CoNLL goes through the converter, which reads its input item by item, from a
Label Studio JSON file the tasks are first streamed into.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import struct
import time
import zlib
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from .labelstudio import Written, dumps
from .media import MediaFiles, safe_suffix

IMAGE_FORMATS = ("COCO", "YOLO", "VOC")
TEXT_FORMATS = ("CONLL2003",)


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    # The converter logs a warning for every item without annotations.
    loggers = [logging.getLogger(name) for name in ("label_studio_sdk.converter.converter",
                                                    "label_studio_sdk.converter", "label_studio_sdk")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


# --- the ZIP archive ---------------------------------------------------------------------------

_LIMIT = (1 << 31) - 1  # beyond it a size or offset goes into a ZIP64 field (zipfile's ZIP64_LIMIT)
_COUNT_LIMIT = 0xFFFF
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_CHUNK = 1 << 20


class _Archive:
    """A ZIP archive written front to back into `target` (which must be seekable).

    `zipfile` keeps an object per member until it closes (about half a KiB
    each: 160 MiB for the label files of 333,000 images); here each member's
    central directory record goes to a spool file and is copied in at the end.
    """

    def __init__(self, target: IO[bytes], spool: Path) -> None:
        self.target = target
        self.offset = target.tell()
        self.spool = open(spool, "w+b", buffering=_CHUNK)
        self.spool_path = spool
        self.count = 0
        now = time.localtime()
        self.dos_time = now.tm_hour << 11 | now.tm_min << 5 | now.tm_sec // 2
        self.dos_date = (now.tm_year - 1980) << 9 | now.tm_mon << 5 | now.tm_mday

    def _write(self, data: bytes) -> None:
        self.target.write(data)
        self.offset += len(data)

    def _local(self, name: bytes, flags: int, method: int, crc: int, compressed: int, size: int,
               zip64: bool) -> bytes:
        extra = struct.pack("<2H2Q", 1, 16, size, compressed) if zip64 else b""
        if zip64:
            compressed = size = 0xFFFFFFFF
        return _LOCAL.pack(b"PK\003\004", 45 if zip64 else 20, 0, flags, method, self.dos_time, self.dos_date,
                           crc, compressed, size, len(name), len(extra)) + name + extra

    def _record(self, name: bytes, flags: int, method: int, crc: int, compressed: int, size: int,
                offset: int) -> None:
        wide = [value for value in (size, compressed, offset) if value > _LIMIT]
        extra = struct.pack(f"<2H{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
        size, compressed, offset = (value if value <= _LIMIT else 0xFFFFFFFF for value in (size, compressed, offset))
        version = 45 if wide else 20
        # Made on Unix (3), a regular file readable by all (0o100644).
        self.spool.write(_CENTRAL.pack(b"PK\001\002", version, 3, version, 0, flags, method, self.dos_time,
                                       self.dos_date, crc, compressed, size, len(name), len(extra), 0, 0, 0,
                                       0o100644 << 16, offset) + name + extra)
        self.count += 1

    @staticmethod
    def _name(name: str) -> tuple[bytes, int]:
        try:
            return name.encode("ascii"), 0
        except UnicodeEncodeError:
            return name.encode("utf-8"), 0x800  # the name is UTF-8

    def add(self, name: str, data: bytes, compress: bool = True) -> None:
        """A member whose bytes are at hand."""
        encoded, flags = self._name(name)
        crc = zlib.crc32(data)
        body = data
        if compress:
            deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
            body = deflate.compress(data) + deflate.flush()
        method = 8 if compress else 0
        offset = self.offset
        zip64 = len(data) > _LIMIT or len(body) > _LIMIT
        self._write(self._local(encoded, flags, method, crc, len(body), len(data), zip64))
        self._write(body)
        self._record(encoded, flags, method, crc, len(body), len(data), offset)

    @contextlib.contextmanager
    def member(self, name: str, compress: bool = True, size: int | None = None) -> Iterator[Any]:
        """A member written in pieces: `write(bytes)` on what this yields. The local header
        is written again at the end with the CRC and sizes, as `zipfile` does."""
        encoded, flags = self._name(name)
        method = 8 if compress else 0
        zip64 = size is None or size * 1.05 > _LIMIT
        offset = self.offset
        self._write(self._local(encoded, flags, method, 0, 0, 0, zip64))
        piece = _Piece(self, compress)
        yield piece
        piece.finish()
        if not zip64 and (piece.size > _LIMIT or piece.compressed > _LIMIT):
            raise ValueError(f"{name} grew past the size it was announced with")
        end = self.offset
        self.target.seek(offset)
        self.target.write(self._local(encoded, flags, method, piece.crc, piece.compressed, piece.size, zip64))
        self.target.seek(end)
        self._record(encoded, flags, method, piece.crc, piece.compressed, piece.size, offset)

    def add_file(self, name: str, path: Path, compress: bool = True) -> None:
        with open(path, "rb") as fh, self.member(name, compress, path.stat().st_size) as out:
            while chunk := fh.read(_CHUNK):
                out.write(chunk)

    def close(self) -> None:
        """Write the central directory and the end records."""
        start = self.offset
        self.spool.flush()
        self.spool.seek(0)
        while chunk := self.spool.read(_CHUNK):
            self._write(chunk)
        self.spool.close()
        self.spool_path.unlink()
        size = self.offset - start
        if self.count > _COUNT_LIMIT or start > _LIMIT or size > _LIMIT:
            end64 = self.offset
            self._write(_END64.pack(b"PK\006\006", _END64.size - 12, 45, 45, 0, 0, self.count, self.count,
                                    size, start))
            self._write(_LOCATOR64.pack(b"PK\006\007", 0, end64, 1))
        self._write(_END.pack(b"PK\005\006", 0, 0, min(self.count, _COUNT_LIMIT), min(self.count, _COUNT_LIMIT),
                              min(size, 0xFFFFFFFF), min(start, 0xFFFFFFFF), 0))


class _Piece:
    """What `_Archive.member` yields: counts, checksums and (when asked) deflates what is written."""

    def __init__(self, archive: _Archive, compress: bool) -> None:
        self.archive = archive
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15) if compress else None
        self.crc = self.size = self.compressed = 0

    def write(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        if self.deflate is not None:
            data = self.deflate.compress(data)
        self.compressed += len(data)
        self.archive._write(data)

    def finish(self) -> None:
        if self.deflate is not None:
            tail = self.deflate.flush()
            self.compressed += len(tail)
            self.archive._write(tail)


# --- items and their images --------------------------------------------------------------------

class _Stage:
    """The work folder and the archive; puts our stored images into it under safe names."""

    def __init__(self, workdir: Path, media: MediaFiles | None, archive: _Archive) -> None:
        self.workdir = workdir
        self.media = media
        self.archive = archive
        self.images_in_archive = 0

    def stored_image(self, task_id: int, value: Any) -> tuple[str, Path] | None:
        """The name `<item id><suffix>` under which the stored image `value` names went into
        the archive's images/, and its checked real file; None when it names none of ours."""
        real = self.media.resolve(value) if self.media is not None else None
        if real is None:
            return None
        name = f"{task_id}{real.suffix.lower()}"
        self.archive.add_file(f"images/{name}", real, compress=False)  # images are compressed already
        self.images_in_archive += 1
        return name, real

    def items(self, tasks: Iterable[Mapping[str, Any]], data_key: str,
              written: Written) -> Iterator[tuple[Mapping[str, Any], Any, tuple[str, Path] | None]]:
        """Each task (counted in `written`) with its image value and, when that names a stored
        image of ours, its name in images/ and real file. Each item comes once, so each image
        goes in once."""
        for task in _counted(tasks, written):
            value = task["data"].get(data_key)
            yield task, value, self.stored_image(task["id"], value)


def _counted(tasks: Iterable[Mapping[str, Any]], written: Written) -> Iterator[Mapping[str, Any]]:
    for task in tasks:
        written.items += 1
        written.annotations += len(task.get("annotations") or ())
        written.records += 1
        yield task


def _image_name(task_id: int, value: Any, stored: tuple[str, Path] | None) -> str:
    """The name of the item's image in the export: its name in images/, or for an image that is
    not ours, its id and the suffix its value shows."""
    return stored[0] if stored is not None else f"{task_id}{safe_suffix(value)}"


def _write_input(path: Path, tasks: Iterable[Mapping[str, Any]]) -> Written:
    """The tasks as a Label Studio JSON file, for the converter (CoNLL)."""
    written = Written()
    with open(path, "w", encoding="utf-8") as out:
        out.write("[")
        separator = "\n"
        for task in _counted(tasks, written):
            out.write(separator)
            out.write(dumps({"id": task["id"], "data": task["data"], "annotations": task.get("annotations") or []}))
            separator = ",\n"
        out.write("\n]\n")
    return written


COCO_BATCH = 512  # images or annotations gathered before a write


def _image_size(path: Path) -> tuple[int | None, int | None]:
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            return image.size
    except Exception:  # a stored file Pillow cannot read: sizes come from the regions
        return None, None


def _category_id(name: str, categories: list[dict], category_ids: dict[str, int]) -> int:
    """The category of a label; one the config does not list gets a category of its own, as the
    converter gives it."""
    if name not in category_ids:
        category_ids[name] = len(categories)
        categories.append({"id": category_ids[name], "name": name})
    return category_ids[name]


def _coco_regions(converter, labels: list[dict], width: Any, height: Any, image_id: int, first_id: int,
                  categories: list[dict], category_ids: dict[str, int]) -> list[dict]:
    """One item's COCO annotations, as label_studio_sdk's `convert_to_coco` makes them."""
    out: list[dict] = []
    keypoints = []
    for label in labels:
        name = None
        for key in ("rectanglelabels", "polygonlabels", "keypointlabels", "labels"):
            if key in label and len(label[key]) > 0:
                name = label[key][0]
                break
        if name is None:
            continue
        category_id = _category_id(name, categories, category_ids)
        if "rectanglelabels" in label or "labels" in label:
            xywh = converter.rotated_rectangle(label)
            if xywh is None:
                continue
            x, y, w, h = xywh
            # The converter scales by the region's original size; a region without one, by the image's.
            scale_x, scale_y = label.get("original_width", width), label.get("original_height", height)
            if not scale_x or not scale_y:
                continue
            x, y, w, h = x * scale_x / 100, y * scale_y / 100, w * scale_x / 100, h * scale_y / 100
            out.append({"id": first_id + len(out), "image_id": image_id, "category_id": category_id,
                        "segmentation": [], "bbox": [x, y, w, h], "ignore": 0, "iscrowd": 0, "area": w * h})
        elif "polygonlabels" in label:
            from label_studio_sdk.converter.utils import get_polygon_area, get_polygon_bounding_box

            if not width or not height or not label.get("points"):
                continue
            points = [(px / 100 * width, py / 100 * height) for px, py in label["points"]]
            xs, ys = zip(*points)
            out.append({"id": first_id + len(out), "image_id": image_id, "category_id": category_id,
                        "segmentation": [[c for point in points for c in point]],
                        "bbox": get_polygon_bounding_box(xs, ys), "ignore": 0, "iscrowd": 0,
                        "area": get_polygon_area(xs, ys)})
        elif "keypointlabels" in label:
            keypoints.append(label)
    if keypoints:
        from label_studio_sdk.converter.keypoints import build_kp_order, process_keypoints_for_coco

        out.append(process_keypoints_for_coco(keypoints, build_kp_order(converter._schema),
                                              annotation_id=first_id + len(out), image_id=image_id,
                                              category_name_to_id=category_ids))
    return out


def _label_lists(converter, controls: dict[str, str | None], annotations: list[dict],
                 region_ids: bool = False) -> Iterator[tuple[Mapping[str, Any], list[dict]]]:
    """What label_studio_sdk's `annotation_result_from_task` gives the image formats, without its
    deep copies (a third of the time of an export): for each annotation that was not cancelled,
    newest first, the annotation and the values of its regions with their control's type and the
    original image size, grouped by control in the order the controls first appear (as the
    converter joins its outputs); ({}, []) for a task without annotations. `region_ids` adds each
    region's id and parentID, as the converter does for YOLO's keypoints. `controls` caches the
    control of each from_name (the converter matches Repeater names with patterns)."""
    if not annotations:
        yield {}, []
        return
    kept = [a for a in annotations if not (a.get("skipped", False) or a.get("was_cancelled", False))]
    schema = converter._schema
    for annotation in sorted(kept, key=lambda a: a.get("created_at", 0), reverse=True):
        groups: dict[str, list[dict]] = {}
        for region in annotation.get("result") or ():
            name = region.get("from_name")
            if name is None:
                continue
            if name not in controls:
                controls[name] = converter._maybe_matching_tag_from_schema(name)
            tag = controls[name]
            if tag is None:
                continue
            value = dict(region["value"])  # shallow: the values are read, never changed
            value["type"] = schema[tag]["type"]
            if "original_width" in region:
                value["original_width"] = region["original_width"]
            if "original_height" in region:
                value["original_height"] = region["original_height"]
            if region_ids:
                value["id"], value["parentID"] = region.get("id"), region.get("parentID")
            groups.setdefault(name, []).append(value)
        if len(groups) > 1:
            yield annotation, [value for group in groups.values() for value in group]
        else:
            yield annotation, next(iter(groups.values()), [])


class _ListFile:
    """The elements of one JSON list, appended to a file of their own, written in batches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "w", encoding="utf-8", buffering=1 << 20)
        self.count = 0
        self.pending: list[str] = []

    def add(self, value: Any) -> None:
        self.pending.append(dumps(value))
        self.count += 1
        if len(self.pending) >= COCO_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.file.write((",\n" if self.count > len(self.pending) else "\n") + ",\n".join(self.pending))
            self.pending = []

    def copy_to(self, out: Any) -> None:
        self.flush()
        self.file.close()
        with open(self.path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                out.write(chunk)
        self.path.unlink()


def _converter(config_xml: str):
    from label_studio_sdk.converter import Converter

    return Converter(config=config_xml, project_dir=None, download_resources=False)


def _write_coco(stage: _Stage, config_xml: str, tasks: Iterable[Mapping[str, Any]], data_key: str) -> Written:
    """`result.json` of a COCO export, one task at a time (see the module's docstring)."""
    from label_studio_sdk.converter.keypoints import update_categories_for_keypoints

    converter = _converter(config_xml)
    categories, category_ids = converter._get_labels()
    categories, category_ids = update_categories_for_keypoints(categories, category_ids, converter._schema)
    controls: dict[str, str | None] = {}
    written = Written()
    images = _ListFile(stage.workdir / "images.tmp")
    regions = _ListFile(stage.workdir / "annotations.tmp")
    for task, value, stored in stage.items(tasks, data_key, written):
        if stored is not None:
            file_name: Any = f"images/{stored[0]}"
            size = _image_size(stored[1])
        else:  # not ours: named as the item names it, never fetched
            file_name, size = value, (None, None)
        for _, labels in _label_lists(converter, controls, task.get("annotations") or []):
            width, height = size
            if not width or not height:  # no readable image: the size the regions were drawn on
                sized = next((label for label in labels if "original_width" in label and "original_height" in label),
                             None)
                if sized is not None:
                    width, height = sized["original_width"], sized["original_height"]
            image_id = images.count
            images.add({"width": width, "height": height, "id": image_id, "file_name": file_name})
            for region in _coco_regions(converter, labels, width, height, image_id, regions.count, categories,
                                        category_ids):
                regions.add(region)
    now = dt.datetime.now()
    info = {"year": now.year, "version": "1.0", "description": "", "contributor": "Label Studio", "url": "",
            "date_created": str(now)}
    with stage.archive.member("result.json") as out:
        out.write(b'{"images": [')
        images.copy_to(out)
        out.write(('\n],\n"categories": ' + dumps(categories) + ',\n"annotations": [').encode("utf-8"))
        regions.copy_to(out)
        out.write(('\n],\n"info": ' + dumps(info) + "}\n").encode("utf-8"))
    return written


def _yolo_lines(labels: list[dict], categories: list[dict], category_ids: dict[str, int]) -> str:
    """An item's YOLO label file, as label_studio_sdk's `process_and_save_yolo_annotations` writes
    it: a line per label of each box (centre, width, height) or polygon (its points), in [0, 1]
    as the percentages are."""
    from label_studio_sdk.converter.utils import convert_annotation_to_yolo

    lines = []
    for label in labels:
        names = [name for key in ("rectanglelabels", "polygonlabels", "labels") for name in label.get(key) or ()]
        for name in names:
            category_id = _category_id(name, categories, category_ids)
            if "rectanglelabels" in label or "rectangle" in label or "labels" in label:
                box = convert_annotation_to_yolo(label)
                if box is None:
                    continue
                numbers: Iterable[Any] = box
            elif "points" in label:  # a polygon
                numbers = (coordinate / 100 for point in label["points"] for coordinate in point)
            else:
                continue
            lines.append(" ".join(map(str, (category_id, *numbers))) + "\n")
    return "".join(lines)


def _write_yolo(stage: _Stage, config_xml: str, tasks: Iterable[Mapping[str, Any]], data_key: str) -> Written:
    """`labels/<name>.txt` per item, `classes.txt` and `notes.json`, one task at a time."""
    import ujson  # the converter writes notes.json with it: "/" comes out as "\/"
    from label_studio_sdk.converter.exports.yolo import process_keypoints_for_yolo
    from label_studio_sdk.converter.keypoints import (build_kp_order, get_yolo_categories_for_keypoints,
                                                      keypoints_in_label_config)

    converter = _converter(config_xml)
    keypoints = keypoints_in_label_config(converter._schema)
    if keypoints:  # a category per box label, each with every keypoint
        categories, category_ids = get_yolo_categories_for_keypoints(converter._schema)
        order = build_kp_order(converter._schema)
    else:
        categories, category_ids = converter._get_labels()
    controls: dict[str, str | None] = {}
    written = Written()
    for task, value, stored in stage.items(tasks, data_key, written):
        text = None  # no file for an item whose every annotation was cancelled
        for _, labels in _label_lists(converter, controls, task.get("annotations") or [], region_ids=keypoints):
            if not labels:
                text = text or ""
            elif keypoints:  # the converter's own writer, through a file
                scratch = stage.workdir / "keypoints.tmp"
                process_keypoints_for_yolo(labels, str(scratch), category_ids, categories, False, order)
                text = scratch.read_text(encoding="utf-8")
            else:
                text = _yolo_lines(labels, categories, category_ids)
        if text is not None:
            stem = os.path.splitext(_image_name(task["id"], value, stored))[0][:251]  # the converter's limit
            stage.archive.add(f"labels/{stem}.txt", text.encode("utf-8"))
    stage.archive.add("classes.txt", "".join(c["name"] + "\n" for c in categories).encode("utf-8"))
    notes = {"categories": categories,
             "info": {"year": dt.datetime.now().year, "version": "1.0", "contributor": "Label Studio"}}
    stage.archive.add("notes.json", ujson.dumps(notes, indent=2).encode("utf-8"))
    return written


def _xml_text(value: Any) -> str:
    # As xml.dom.minidom writes a text node (the converter's writer).
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace(">", "&gt;")


def _voc_xml(file_name: str, annotator: str, boxes: list[dict]) -> str | None:
    """An item's Pascal VOC file, as label_studio_sdk's `convert_to_voc` writes it, or None when
    it writes none (no size on the first region). Boxes are in pixels of the size the first
    region was drawn on; the depth is 3 (the converter reads it only from an image it downloads)."""
    first = boxes[0]
    if "original_width" not in first or "original_height" not in first:
        return None
    width, height = first["original_width"], first["original_height"]
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotation>\n<folder>images</folder>\n',
             f"<filename>{_xml_text(file_name)}</filename>\n<source>\n<database>MyDatabase</database>\n"
             "<annotation>COCO2017</annotation>\n<image>flickr</image>\n<flickrid>NULL</flickrid>\n"
             f"<annotator>{_xml_text(annotator)}</annotator>\n</source>\n"
             "<owner>\n<flickrid>NULL</flickrid>\n<name>Label Studio</name>\n</owner>\n"
             f"<size>\n<width>{_xml_text(width)}</width>\n<height>{_xml_text(height)}</height>\n"
             "<depth>3</depth>\n</size>\n<segmented>0</segmented>\n"]
    for box in boxes:
        key = "rectanglelabels" if "rectanglelabels" in box else ("labels" if "labels" in box else None)
        if key is None or not box[key]:
            continue
        x, y = int(box["x"] / 100 * width), int(box["y"] / 100 * height)
        w, h = int(box["width"] / 100 * width), int(box["height"] / 100 * height)
        parts.append(f"<object>\n<name>{_xml_text(box[key][0])}</name>\n<pose>Unspecified</pose>\n"
                     "<truncated>0</truncated>\n<difficult>0</difficult>\n"
                     f"<bndbox>\n<xmin>{x}</xmin>\n<ymin>{y}</ymin>\n<xmax>{x + w}</xmax>\n<ymax>{y + h}</ymax>\n"
                     "</bndbox>\n</object>\n")
    parts.append("</annotation>\n")
    return "".join(parts)


def _write_voc(stage: _Stage, config_xml: str, tasks: Iterable[Mapping[str, Any]], data_key: str) -> Written:
    """`Annotations/<name>.xml` per item with boxes, one task at a time."""
    from label_studio_sdk.converter.utils import get_annotator

    converter = _converter(config_xml)
    controls: dict[str, str | None] = {}
    written = Written()
    for task, value, stored in stage.items(tasks, data_key, written):
        file_name = _image_name(task["id"], value, stored)
        document = None
        for annotation, labels in _label_lists(converter, controls, task.get("annotations") or []):
            if labels:
                annotator = get_annotator({"completed_by": annotation.get("completed_by", {})}, "")
                document = _voc_xml(file_name, annotator, labels) or document
        if document is not None:
            stage.archive.add(f"Annotations/{os.path.splitext(file_name)[0]}.xml", document.encode("utf-8"))
    return written


IMAGE_WRITERS = {"COCO": _write_coco, "YOLO": _write_yolo, "VOC": _write_voc}


def write_converted(fmt: str, config_xml: str, tasks: Iterable[Mapping[str, Any]], target: IO[bytes],
                    workdir: Path, data_key: str, media: MediaFiles | None) -> Written:
    """Convert `tasks` to `fmt` and write the result to `target`: a ZIP archive
    for COCO, YOLO and VOC, the .conll text for CoNLL 2003.

    `data_key` is the config's one data key; `media` gives our stored images
    (None leaves them out). `workdir` must be an empty folder of our own; it
    is removed afterwards.
    """
    if fmt not in IMAGE_FORMATS + TEXT_FORMATS:
        raise ValueError(f"{fmt} is not a format of the converter")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if fmt in IMAGE_WRITERS:
            archive = _Archive(target, workdir / "central.tmp")
            stage = _Stage(workdir, media, archive)
            with _quiet_converter():
                written = IMAGE_WRITERS[fmt](stage, config_xml, tasks, data_key)
            archive.close()
            written.images = stage.images_in_archive
            return written
        written = _write_input(workdir / "input.json", tasks)
        with _quiet_converter():
            _converter(config_xml).convert(str(workdir / "input.json"), str(workdir / "out"), fmt, is_dir=False)
        with open(workdir / "out" / "result.conll", "rb") as fh:
            shutil.copyfileobj(fh, target, 1 << 20)
        return written
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
