"""COCO, YOLO, Pascal VOC and CoNLL 2003, through label-studio-sdk's `Converter`.

The converter reads a Label Studio JSON file from disk, so the tasks are first
streamed into one. On the way, every value of the image data key is
replaced by a path in our work folder that exists:

- a stored image of ours (a value under /media/ that `MediaFiles.resolve`
  accepts) becomes a symlink `images/<item id><suffix>` to the checked real
  file, and that file goes into the archive under that safe name;
- anything else (an http URL, a path outside the media root, a missing file)
  becomes an empty placeholder outside the archive.

So the converter never probes a user's path, never downloads anything
(it only fetches what does not exist, and everything exists), and the
archive holds only our own media.

COCO is written here, not by the converter: its `convert_to_coco` keeps the
image and annotation lists of the whole project in memory to write one JSON
document. `_write_coco` reads the tasks one at a time with the converter's
own pieces (`annotation_result_from_task`, its categories, box, polygon and
keypoint arithmetic), appends each image and annotation to a file of its
own, and joins the files into `result.json` at the end, so memory stays
flat however big the project. Its `file_name` is the name in the archive for
a stored image of ours, or the item's own value for any other. YOLO, VOC
and CoNLL go through the converter, which reads its input item by item.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import zipfile
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


class _Stage:
    """The work folder: the converter's input, its output, and placeholders."""

    def __init__(self, workdir: Path, media: MediaFiles | None) -> None:
        self.out = workdir / "out"
        self.images = self.out / "images"
        self.external = workdir / "external"
        self.input = workdir / "input.json"
        self.media = media
        for folder in (self.images, self.external):
            folder.mkdir(parents=True, exist_ok=True)
        self.stored: dict[str, Path] = {}     # symlink path -> checked real file
        self.images_in_archive = 0

    def stored_image(self, task_id: int, value: Any) -> Path | None:
        """The archive's link to the stored image `value` names, or None when it names none of ours."""
        real = self.media.resolve(value) if self.media is not None else None
        if real is None:
            return None
        link = self.images / f"{task_id}{real.suffix.lower()}"
        if not link.is_symlink():
            os.symlink(real, link)
            self.images_in_archive += 1
        self.stored[str(link)] = real
        return link

    def place(self, task_id: int, value: Any) -> str:
        link = self.stored_image(task_id, value)
        if link is not None:
            return str(link)
        placeholder = self.external / f"{task_id}{safe_suffix(value)}"
        placeholder.touch()
        return str(placeholder)


def _write_input(stage: _Stage, fmt: str, tasks: Iterable[Mapping[str, Any]], data_key: str) -> Written:
    written = Written()
    with open(stage.input, "w", encoding="utf-8") as out:
        out.write("[")
        separator = "\n"
        for task in tasks:
            data = dict(task["data"])
            if fmt in IMAGE_FORMATS:
                data[data_key] = stage.place(task["id"], data.get(data_key))
            annotations = task.get("annotations") or []
            out.write(separator)
            out.write(dumps({"id": task["id"], "data": data, "annotations": annotations}))
            separator = ",\n"
            written.items += 1
            written.annotations += len(annotations)
            written.records += 1
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
        if name not in category_ids:  # a label the config does not list: a category of its own
            category_ids[name] = len(categories)
            categories.append({"id": category_ids[name], "name": name})
        category_id = category_ids[name]
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


def _label_lists(converter, controls: dict[str, str | None], annotations: list[dict]) -> Iterator[list[dict]]:
    """What label_studio_sdk's `annotation_result_from_task` gives COCO, without its deep copies
    (a third of the time of an export): for each annotation that was not cancelled, newest
    first, the values of its regions with their control's type and the original image size;
    one empty list for a task without annotations. `controls` caches the control of each
    from_name (the converter matches Repeater names with patterns)."""
    if not annotations:
        yield []
        return
    kept = [a for a in annotations if not (a.get("skipped", False) or a.get("was_cancelled", False))]
    schema = converter._schema
    for annotation in sorted(kept, key=lambda a: a.get("created_at", 0), reverse=True):
        labels = []
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
            labels.append(value)
        yield labels


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

    def copy_to(self, out: IO[str]) -> None:
        self.flush()
        self.file.close()
        with open(self.path, encoding="utf-8") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)
        self.path.unlink()


def _write_coco(stage: _Stage, config_xml: str, tasks: Iterable[Mapping[str, Any]], data_key: str) -> Written:
    """`result.json` of a COCO export, one task at a time (see the module's docstring)."""
    from label_studio_sdk.converter import Converter
    from label_studio_sdk.converter.keypoints import update_categories_for_keypoints

    converter = Converter(config=config_xml, project_dir=None, download_resources=False)
    categories, category_ids = converter._get_labels()
    categories, category_ids = update_categories_for_keypoints(categories, category_ids, converter._schema)
    controls: dict[str, str | None] = {}
    written = Written()
    images = _ListFile(stage.out / ".images.tmp")
    regions = _ListFile(stage.out / ".annotations.tmp")
    for task in tasks:
        annotations = task.get("annotations") or []
        written.items += 1
        written.annotations += len(annotations)
        written.records += 1
        value = task["data"].get(data_key)
        link = stage.stored_image(task["id"], value)
        if link is not None:
            file_name: Any = f"images/{link.name}"
            size = _image_size(stage.stored[str(link)])
        else:  # not ours: named as the item names it, never fetched
            file_name, size = value, (None, None)
        for labels in _label_lists(converter, controls, annotations):
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
    with open(stage.out / "result.json", "w", encoding="utf-8", buffering=1 << 20) as out:
        out.write('{"images": [')
        images.copy_to(out)
        out.write('\n],\n"categories": ' + dumps(categories) + ',\n"annotations": [')
        regions.copy_to(out)
        out.write('\n],\n"info": ' + dumps(info) + "}\n")
    return written


def _zip(stage: _Stage, target: IO[bytes]) -> None:
    files = sorted(p for p in stage.out.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    with zipfile.ZipFile(target, "w") as archive:
        for path in files:
            name = path.relative_to(stage.out).as_posix()
            if path.is_symlink():
                real = stage.stored.get(str(path))
                if real is None:  # not one we made: never follow it
                    continue
                archive.write(real, name, compress_type=zipfile.ZIP_STORED)  # images are compressed already
            else:
                archive.write(path, name, compress_type=zipfile.ZIP_DEFLATED)


def write_converted(fmt: str, config_xml: str, tasks: Iterable[Mapping[str, Any]], target: IO[bytes],
                    workdir: Path, data_key: str, media: MediaFiles | None) -> Written:
    """Convert `tasks` to `fmt` and write the result to `target`: a ZIP archive
    for COCO, YOLO and VOC, the .conll text for CoNLL 2003.

    `data_key` is the config's one data key; `media` gives our stored images
    (None leaves them out). `workdir` must be an empty folder of our own; it
    is removed afterwards.
    """
    from label_studio_sdk.converter import Converter

    if fmt not in IMAGE_FORMATS + TEXT_FORMATS:
        raise ValueError(f"{fmt} is not a format of the converter")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        stage = _Stage(workdir, media)
        if fmt == "COCO":
            with _quiet_converter():
                written = _write_coco(stage, config_xml, tasks, data_key)
        else:
            written = _write_input(stage, fmt, tasks, data_key)
            converter = Converter(config=config_xml, project_dir=None, download_resources=False)
            with _quiet_converter():
                converter.convert(str(stage.input), str(stage.out), fmt, is_dir=False)
        if fmt == "CONLL2003":
            with open(stage.out / "result.conll", "rb") as fh:
                shutil.copyfileobj(fh, target, 1 << 20)
        else:
            _zip(stage, target)
        written.images = stage.images_in_archive
        return written
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
