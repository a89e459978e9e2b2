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
archive holds only our own media. COCO's `file_name` is then rewritten to
the name in the archive, or to the item's original value for an image that
is not ours.

The converter keeps COCO's image and annotation lists in memory while it
writes them (one JSON document); YOLO, VOC and CoNLL go item by item.
"""
from __future__ import annotations

import contextlib
import json
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
        self.originals: dict[str, Any] = {}   # placeholder path -> the item's own value (COCO only)
        self.stored: dict[str, Path] = {}     # symlink path -> checked real file
        self.images_in_archive = 0

    def place(self, task_id: int, value: Any, remember: bool) -> str:
        real = self.media.resolve(value) if self.media is not None else None
        if real is not None:
            link = self.images / f"{task_id}{real.suffix.lower()}"
            if not link.is_symlink():
                os.symlink(real, link)
                self.images_in_archive += 1
            self.stored[str(link)] = real
            return str(link)
        placeholder = self.external / f"{task_id}{safe_suffix(value)}"
        placeholder.touch()
        if remember:
            self.originals[str(placeholder)] = value
        return str(placeholder)


def _write_input(stage: _Stage, fmt: str, tasks: Iterable[Mapping[str, Any]], data_key: str) -> Written:
    written = Written()
    with open(stage.input, "w", encoding="utf-8") as out:
        out.write("[")
        separator = "\n"
        for task in tasks:
            data = dict(task["data"])
            if fmt in IMAGE_FORMATS:
                data[data_key] = stage.place(task["id"], data.get(data_key), remember=fmt == "COCO")
            annotations = task.get("annotations") or []
            out.write(separator)
            out.write(dumps({"id": task["id"], "data": data, "annotations": annotations}))
            separator = ",\n"
            written.items += 1
            written.annotations += len(annotations)
            written.records += 1
        out.write("\n]\n")
    return written


def _fix_coco(stage: _Stage) -> None:
    path = stage.out / "result.json"
    with open(path, encoding="utf-8") as fh:
        coco = json.load(fh)
    for image in coco.get("images", ()):
        name = image.get("file_name")
        if name in stage.stored:
            image["file_name"] = f"images/{Path(name).name}"
        elif name in stage.originals:
            image["file_name"] = stage.originals[name]
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(coco, fh, ensure_ascii=False)


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
        written = _write_input(stage, fmt, tasks, data_key)
        converter = Converter(config=config_xml, project_dir=None, download_resources=False)
        with _quiet_converter():
            converter.convert(str(stage.input), str(stage.out), fmt, is_dir=False)
        if fmt == "COCO":
            _fix_coco(stage)
        if fmt == "CONLL2003":
            with open(stage.out / "result.conll", "rb") as fh:
                shutil.copyfileobj(fh, target, 1 << 20)
        else:
            _zip(stage, target)
        written.images = stage.images_in_archive
        return written
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
