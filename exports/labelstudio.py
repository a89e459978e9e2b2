"""Label Studio's own export formats: JSON, JSON-min, CSV and TSV.

The writers take an iterable of Label Studio tasks (dicts with "id", "data",
"annotations", and for JSON "predictions") and write each one as it comes.

JSON-min and CSV/TSV give one record per annotation, as label-studio-sdk's
`Converter` does, with the same keys and the same shortening of results
(`prettify_result`): a single choice becomes its label, a single text its
string. Two differences, both so a file can be written in one pass: the
CSV columns come from the label config and the project's data keys instead
of a first pass over the records (so a control nobody used still has its
column), and JSON-min puts one record on a line instead of indenting it.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator, Mapping

try:  # ujson comes with label-studio-sdk and reads and writes these records twice as fast
    import ujson

    def _encode(value: Any) -> str:
        return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False)

    loads = ujson.loads
except ImportError:  # pragma: no cover - the standard library gives the same text, slower
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    loads = json.loads

# Keys every JSON-min and CSV record has, after the data and the controls.
RECORD_KEYS = ("annotator", "annotation_id", "created_at", "updated_at", "lead_time")


def dumps(value: Any) -> str:
    return _encode(value)


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


def write_json(tasks: Iterable[Mapping[str, Any]], out: IO[str]) -> Written:
    """A JSON list of tasks, one task per line."""
    items = annotations = 0
    write, encode = out.write, _encode
    write("[")
    separator = "\n"
    for task in tasks:
        write(separator + encode(task))
        separator = ",\n"
        items += 1
        annotations += len(task.get("annotations") or ())
    write("\n]\n")
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


def _annotations_newest_first(annotations: list) -> list[Mapping[str, Any]]:
    kept = [a for a in annotations if not (a.get("skipped") or a.get("was_cancelled"))]
    if len(kept) > 1:
        # Imported annotations may have no created_at: they sort last, as the oldest.
        kept.sort(key=_created, reverse=True)
    return kept


class _Outputs:
    """`_outputs`, remembered per result object: a reader that shares one
    parsed result among the annotations with the same JSON (see the export
    service) gets its outputs worked out once. The result is kept with its
    outputs, so its id cannot be reused while it is remembered."""

    def __init__(self, controls: Mapping[str, str], size: int = 4096) -> None:
        self.controls = controls
        self.size = size
        self.known: dict[int, tuple[Any, dict]] = {}

    def __call__(self, result: Any) -> dict[str, Any]:
        hit = self.known.get(id(result))
        if hit is not None and hit[0] is result:
            return hit[1]
        if len(self.known) >= self.size:
            self.known.clear()
        outputs = _outputs(result, self.controls)
        self.known[id(result)] = (result, outputs)
        return outputs


def annotation_records(task: Mapping[str, Any], controls: Mapping[str, str] | _Outputs
                       ) -> Iterator[tuple[dict, Mapping]]:
    """(outputs by control, annotation) per annotation of a task, newest first.

    A task without annotations gives one record with no outputs, as the
    converter does; one whose annotations were all cancelled gives none.
    The outputs may be shared between records: read them, never change them.
    """
    annotations = task.get("annotations")
    if not annotations:
        return iter((({}, {}),))
    outputs = controls if isinstance(controls, _Outputs) else _Outputs(controls)
    return ((outputs(a.get("result")), a) for a in _annotations_newest_first(annotations))


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


def write_json_min(tasks: Iterable[Mapping[str, Any]], out: IO[str], controls: Mapping[str, str]) -> Written:
    """JSON-min: a JSON list with one flat record per annotation (`json_min_record`).

    `controls` maps each control name of the config to its tag ("Choices").
    A task's data is encoded once for all its records: each record's text is
    the data's, then "id", then the annotation's own keys, which is what
    encoding the whole record gives as long as no data key is also a control
    or record key; a task where one is goes through `json_min_record`.
    """
    items = records = annotations = 0
    write, encode, outputs_of = out.write, _encode, _Outputs(controls)
    reserved = frozenset(controls) | {"id", *RECORD_KEYS}
    write("[")
    separator = "\n"
    for task in tasks:
        items += 1
        data = task["data"]
        shared = reserved.isdisjoint(data)
        if shared:
            head = encode(data)[:-1] + ("," if data else "") + '"id":' + encode(task["id"]) + ","
        for outputs, annotation in annotation_records(task, outputs_of):
            if shared:
                who = annotation.get("completed_by", {})
                own = {**outputs, "annotator": who if who.__class__ is str else _annotator(who, keep_int=True),
                       "annotation_id": annotation.get("id"), "created_at": annotation.get("created_at"),
                       "updated_at": annotation.get("updated_at"), "lead_time": annotation.get("lead_time")}
                write(separator + head + encode(own)[1:])
            else:
                write(separator + encode(json_min_record(task, outputs, annotation)))
            separator = ",\n"
            records += 1
            annotations += bool(annotation)
    write("\n]\n")
    return Written(items, annotations, records)


def csv_columns(data_keys: Iterable[str], controls: Iterable[str]) -> list[str]:
    """The CSV header: data keys (renamed "_data_<key>" where a control has
    the same name), control names, "id" and the record keys, sorted as the
    converter sorts them."""
    controls = set(controls)
    columns = {f"_data_{key}" if key in controls else key for key in data_keys}
    return sorted(columns | controls | {"id", *RECORD_KEYS})


def write_csv(tasks: Iterable[Mapping[str, Any]], out: IO[str], controls: Mapping[str, str],
              data_keys: Iterable[str], *, separator: str = ",") -> Written:
    """CSV (or TSV with separator="\\t"): one row per annotation.

    `data_keys` must hold every key of the tasks' data (the service asks the
    database for them); a task with another key is refused rather than cut.
    Open `out` with newline="". Each row is what label-studio-sdk's csv2.prepare_annotation
    makes, built a task at a time: the data's cells once, then each annotation's.
    """
    columns = csv_columns(data_keys, controls)
    index = {column: i for i, column in enumerate(columns)}
    at_id, at_annotator, at_annotation, at_created, at_updated, at_lead = (
        index[k] for k in ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"))
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, delimiter=separator)
    writer.writerow(columns)
    writerow, encode, outputs_of = writer.writerow, _encode, _Outputs(controls)
    items = records = annotations = 0
    for task in tasks:
        items += 1
        base: list[Any] = [""] * len(columns)
        base[at_id] = task["id"]
        for key, value in task["data"].items():
            at = index.get(f"_data_{key}" if key in controls else key)
            if at is None:
                raise ValueError(f"the data key {key!r} of item {task['id']} is not among the CSV columns")
            base[at] = encode(value) if isinstance(value, (dict, list)) else value
        for outputs, annotation in annotation_records(task, outputs_of):
            row = base.copy()
            for name, value in outputs.items():
                row[index[name]] = value if value.__class__ is str else encode(value)
            who = annotation.get("completed_by", {})
            row[at_annotator] = who if who.__class__ is str else _annotator(who, keep_int=False)
            row[at_annotation] = annotation.get("id")
            row[at_created] = annotation.get("created_at")
            row[at_updated] = annotation.get("updated_at")
            row[at_lead] = annotation.get("lead_time")
            writerow(row)
            records += 1
            annotations += bool(annotation)
    return Written(items, annotations, records)
