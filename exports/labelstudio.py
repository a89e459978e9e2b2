"""Label Studio's own export formats: JSON, JSON-min, CSV and TSV.

The writers take an iterable of Label Studio tasks (dicts with "id", "data",
"annotations", and for JSON "predictions") and write each one as it comes:
JSON and JSON-min to a binary file (UTF-8), CSV and TSV to a text file.

JSON-min and CSV/TSV give one record per annotation, as label-studio-sdk's
`Converter` does, with the same keys and the same shortening of results
(`prettify_result`): a single choice becomes its label, a single text its
string. Two differences, both so a file can be written in one pass: the
CSV columns come from the label config and the project's data keys instead
of a first pass over the records (so a control nobody used still has its
column), and JSON-min puts one record on a line instead of indenting it.

A large export writes millions of records, so the writers put each record
together from pieces made once: an item's data once for all its records, a
result's outputs once for every annotation that shares it (`_PerObject`).
"""
from __future__ import annotations

import csv
import io
import json
import operator
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, Mapping

import orjson

try:  # ujson comes with label-studio-sdk; unlike orjson it reads integers of any size exactly
    from ujson import loads
except ImportError:  # pragma: no cover - the standard library gives the same values, slower
    from json import loads

# Keys every JSON-min and CSV record has, after the data and the controls.
RECORD_KEYS = ("annotator", "annotation_id", "created_at", "updated_at", "lead_time")

_FALLBACK = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode(value: Any) -> bytes:
    """Compact JSON in UTF-8: no spaces, non-ASCII text and "/" as they are."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # What orjson refuses and JSON allows, such as an integer beyond 64 bits, as the standard
        # library writes it (a lone surrogate then fails as UTF-8, as it always did).
        return _FALLBACK(value).encode("utf-8")


def dumps(value: Any) -> str:
    """`encode` as text."""
    return encode(value).decode("utf-8")


@dataclass
class Written:
    """What a writer wrote: items, annotations and records (lines or rows)."""

    items: int = 0
    annotations: int = 0
    records: int = 0
    images: int = 0  # stored images put into an archive

    def as_dict(self) -> dict[str, int]:
        return {"items": self.items, "annotations": self.annotations, "records": self.records,
                "images": self.images}


# --- Label Studio JSON -----------------------------------------------------------


def write_json(tasks: Iterable[Mapping[str, Any]], out: IO[bytes]) -> Written:
    """A JSON list of tasks, one task per line."""
    items = annotations = 0
    write = out.write
    write(b"[")
    separator = b"\n"
    for task in tasks:
        write(separator + encode(task))
        separator = b",\n"
        items += 1
        annotations += len(task.get("annotations") or ())
    write(b"\n]\n")
    return Written(items, annotations, items)


# --- one record per annotation -------------------------------------------------------


def _pretty(values: list[tuple[str, dict]]) -> Any:
    """label_studio_sdk.converter.utils.prettify_result, on (control tag, value) pairs."""
    out: list[Any] = []
    tag = None
    for tag, value in values:
        if tag == "Choices" and len(value.get("choices") or ()) == 1:
            out.append(value["choices"][0])
        elif tag == "TextArea" and len(value.get("text") or ()) == 1:
            out.append(value["text"][0])
        else:
            out.append(value)
    return out[0] if tag in ("Choices", "TextArea") and len(out) == 1 else out


def _outputs(result: Any, controls: Mapping[str, str]) -> dict[str, Any]:
    """Results grouped by control, shortened as the converter does."""
    grouped: dict[str, list[tuple[str, dict]]] = {}
    for region in result or ():
        if region.__class__ is not dict:
            continue
        name = region.get("from_name")
        tag = controls.get(name) if name is not None else None
        if tag is None:
            continue  # the converter drops regions of controls the config does not have
        value = region.get("value") or {}
        if "original_width" in region or "original_height" in region:
            value = dict(value)
            if "original_width" in region:
                value["original_width"] = region["original_width"]
            if "original_height" in region:
                value["original_height"] = region["original_height"]
        values = grouped.get(name)
        if values is None:
            grouped[name] = [(tag, value)]
        else:
            values.append((tag, value))
    return {name: _pretty(values) for name, values in grouped.items()}


def _annotator(completed_by: Any, *, keep_int: bool) -> Any:
    """label_studio_sdk.converter.utils.get_annotator."""
    if isinstance(completed_by, dict):
        return completed_by.get("email")
    if isinstance(completed_by, int) and keep_int:
        return completed_by
    return str(completed_by)


def _created(annotation: Mapping[str, Any]) -> str:
    return annotation.get("created_at") or ""


_CREATED_AT = operator.itemgetter("created_at")


def _annotations_newest_first(annotations: list) -> list[Mapping[str, Any]]:
    kept = [a for a in annotations if not (a.get("skipped") or a.get("was_cancelled"))]
    if len(kept) > 1:
        try:  # our annotations all have created_at: sorted by it with no Python call per annotation
            return sorted(kept, key=_CREATED_AT, reverse=True)
        except (KeyError, TypeError):
            # Imported annotations may have no created_at: they sort last, as the oldest.
            kept.sort(key=_created, reverse=True)
    return kept


def _records_of(task: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The annotations a task gives records for, newest first. A task without
    annotations gives one record with no outputs (an empty annotation), as the
    converter does; one whose annotations were all cancelled gives none."""
    annotations = task.get("annotations")
    return _annotations_newest_first(annotations) if annotations else [{}]


class _PerObject:
    """`make(value)`, worked out once per object: a reader that shares one parsed
    result among the annotations with the same JSON (see the export service)
    gets its outputs made once, and one string per pseudonym its cell. The
    object is kept with what was made of it, so its id cannot be reused while
    it is remembered."""

    def __init__(self, make: Callable[[Any], Any], size: int = 4096) -> None:
        self.make = make
        self.size = size
        self.known: dict[int, tuple[Any, Any]] = {}

    def __call__(self, value: Any) -> Any:
        hit = self.known.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if len(self.known) >= self.size:
            self.known.clear()
        made = self.make(value)
        self.known[id(value)] = (value, made)
        return made


def json_min_record(task: Mapping[str, Any], outputs: dict, annotation: Mapping) -> dict[str, Any]:
    """label_studio_sdk.converter.Converter.convert_to_json_min, for one record."""
    record = dict(task["data"])
    record["id"] = task["id"]
    record.update(outputs)
    record["annotator"] = _annotator(annotation.get("completed_by", {}), keep_int=True)
    record["annotation_id"] = annotation.get("id")
    record["created_at"] = annotation.get("created_at")
    record["updated_at"] = annotation.get("updated_at")
    record["lead_time"] = annotation.get("lead_time")
    return record


def _members(encoded: bytes) -> bytes:
    """The members of an encoded JSON object, each followed by a comma: b'{"a":1}' gives b'"a":1,'."""
    return encoded[1:-1] + b"," if len(encoded) > 2 else b""


def write_json_min(tasks: Iterable[Mapping[str, Any]], out: IO[bytes], controls: Mapping[str, str]) -> Written:
    """JSON-min: a JSON list with one flat record per annotation (`json_min_record`).

    `controls` maps each control name of the config to its tag ("Choices").
    A record is the item's data, "id", the outputs by control, then the
    record keys, so its text is put together from the data's encoded once
    per item, the outputs' once per result and the record keys' own: the
    same text as encoding the record whole, as long as no key is in two of
    these parts. A task where a data key is also a control or record key (or
    a config whose control is named like a record key) is encoded whole.
    """
    items = records = annotations = 0
    write = out.write
    outputs_of = _PerObject(lambda result: _outputs(result, controls))
    members_of = _PerObject(lambda result: _members(encode(outputs_of(result))))
    reserved = frozenset(controls) | {"id", *RECORD_KEYS}
    whole_only = not frozenset(controls).isdisjoint({"id", *RECORD_KEYS})
    write(b"[")
    separator = b"\n"
    for task in tasks:
        items += 1
        data = task["data"]
        chosen = _records_of(task)
        if whole_only or not reserved.isdisjoint(data):
            for annotation in chosen:
                record = json_min_record(task, outputs_of(annotation.get("result")), annotation)
                write(separator + encode(record))
                separator = b",\n"
        else:
            head = b"{" + _members(encode(data)) + b'"id":' + encode(task["id"]) + b","
            for annotation in chosen:
                who = annotation.get("completed_by", {})
                own = {"annotator": who if who.__class__ is str else _annotator(who, keep_int=True),
                       "annotation_id": annotation.get("id"), "created_at": annotation.get("created_at"),
                       "updated_at": annotation.get("updated_at"), "lead_time": annotation.get("lead_time")}
                write(separator + head + members_of(annotation.get("result")) + encode(own)[1:])
                separator = b",\n"
        records += len(chosen)
        annotations += sum(1 for annotation in chosen if annotation)
    write(b"\n]\n")
    return Written(items, annotations, records)


def csv_columns(data_keys: Iterable[str], controls: Iterable[str]) -> list[str]:
    """The CSV header: data keys (renamed "_data_<key>" where a control has
    the same name), control names, "id" and the record keys, sorted as the
    converter sorts them."""
    controls = set(controls)
    columns = {f"_data_{key}" if key in controls else key for key in data_keys}
    return sorted(columns | controls | {"id", *RECORD_KEYS})


def csv_cell(value: Any) -> str:
    """A cell as `csv.writer(quoting=csv.QUOTE_NONNUMERIC)` writes it: numbers as
    they are, anything else quoted, with quotes doubled. Python 3.11's csv module
    costs about 0.1 µs a character, more than all else a CSV export does."""
    kind = value.__class__
    if kind is str:
        return '"' + value.replace('"', '""') + '"'
    if value is None:
        return '""'
    if kind is int or kind is float or kind is bool:
        return str(value)
    cell = io.StringIO()  # any other type, as rarely as it comes: the csv module's own way
    csv.writer(cell, quoting=csv.QUOTE_NONNUMERIC, lineterminator="").writerow([value])
    return cell.getvalue()


def write_csv(tasks: Iterable[Mapping[str, Any]], out: IO[str], controls: Mapping[str, str],
              data_keys: Iterable[str], *, separator: str = ",") -> Written:
    """CSV (or TSV with separator="\\t"): one row per annotation.

    `data_keys` must hold every key of the tasks' data (the service asks the
    database for them); a task with another key is refused rather than cut.
    Open `out` with newline="". Each row is what label-studio-sdk's csv2.prepare_annotation
    makes, quoted as `csv.writer(quoting=QUOTE_NONNUMERIC)` quotes it (`csv_cell`),
    built a task at a time: the data's cells once, then each annotation's.
    """
    columns = csv_columns(data_keys, controls)
    index = {column: i for i, column in enumerate(columns)}
    at_id, at_annotator, at_annotation, at_created, at_updated, at_lead = (
        index[k] for k in ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"))
    write, cell = out.write, csv_cell
    write(separator.join(map(cell, columns)) + "\r\n")
    output_cells = _PerObject(lambda result: [
        (index[name], cell(value if value.__class__ is str else dumps(value)))
        for name, value in _outputs(result, controls).items()])
    annotator_cell = _PerObject(cell)
    empty = [cell("")] * len(columns)
    items = records = annotations = 0
    for task in tasks:
        items += 1
        base = empty.copy()
        base[at_id] = cell(task["id"])
        for key, value in task["data"].items():
            at = index.get(f"_data_{key}" if key in controls else key)
            if at is None:
                raise ValueError(f"the data key {key!r} of item {task['id']} is not among the CSV columns")
            base[at] = cell(dumps(value) if isinstance(value, (dict, list)) else value)
        for annotation in _records_of(task):
            row = base.copy()
            for at, value in output_cells(annotation.get("result")):
                row[at] = value
            who = annotation.get("completed_by", {})
            row[at_annotator] = annotator_cell(who) if who.__class__ is str else cell(_annotator(who, keep_int=False))
            created, updated = annotation.get("created_at"), annotation.get("updated_at")
            row[at_created] = created_cell = cell(created)
            row[at_updated] = created_cell if updated is created else cell(updated)
            row[at_annotation] = cell(annotation.get("id"))
            row[at_lead] = cell(annotation.get("lead_time"))
            write(separator.join(row) + "\r\n")
            records += 1
            annotations += bool(annotation)
    return Written(items, annotations, records)
