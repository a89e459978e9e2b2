"""The export formats, and which of them a label config can be exported to.

JSON, JSON-min, CSV, TSV and the consensus file fit every config. COCO,
YOLO, Pascal VOC and CoNLL 2003 fit only some: label-studio-sdk's
`Converter` says which (its `supported_formats`), and `offers` adds the
reason in words when a format is not offered.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Format:
    name: str         # as Label Studio's API spells it: "JSON_MIN"
    title: str
    description: str
    extension: str    # of the file a user downloads
    mimetype: str
    label_studio: bool = True   # offered through Label Studio's /export endpoint too
    converted: bool = False     # a format of label-studio-sdk's Converter (exports.converted)
    archive: bool = False       # a ZIP (with images when the project has stored media)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("JSON", "JSON", "Label Studio JSON: every item with its data, all its annotations and predictions. "
           "Annotator ids are pseudonyms, different in every export.", "json", "application/json"),
    Format("JSON_MIN", "JSON-min", "One flat record per annotation: the item's data and each control's "
           "result, without ids of regions or predictions.", "json", "application/json"),
    Format("CSV", "CSV", "One row per annotation, a column per data key and per control.", "csv", "text/csv"),
    Format("TSV", "TSV", "As CSV, separated by tabs.", "tsv", "text/tab-separated-values"),
    Format("COCO", "COCO", "Boxes and polygons per image in one COCO JSON file, with the stored images, "
           "in a ZIP archive. One label set per item: its consensus, else its latest annotation.",
           "zip", "application/zip", converted=True, archive=True),
    Format("YOLO", "YOLO", "A text file of normalised boxes per image, classes.txt, and the stored images, "
           "in a ZIP archive. One label set per item: its consensus, else its latest annotation.",
           "zip", "application/zip", converted=True, archive=True),
    Format("VOC", "Pascal VOC XML", "An XML file of boxes per image, and the stored images, in a ZIP archive. "
           "One label set per item: its consensus, else its latest annotation.",
           "zip", "application/zip", converted=True, archive=True),
    Format("CONLL2003", "CoNLL 2003", "Named entities as one token per line with its BIO tag. "
           "One label set per item: its consensus, else its latest annotation.",
           "conll", "text/plain", converted=True),
    Format("CONSENSUS_JSONL", "Consensus (JSONL)", "One line per scored item: data, consensus label and "
           "result, confidence, agreement, number of annotators, gold flag.", "jsonl", "application/x-ndjson",
           label_studio=False),
    Format("CONSENSUS_CSV", "Consensus (CSV)", "The consensus file as CSV.", "csv", "text/csv",
           label_studio=False),
)}

# What Label Studio's API also calls them.
ALIASES = {"JSON-MIN": "JSON_MIN", "JSONMIN": "JSON_MIN", "COCO_WITH_IMAGES": "COCO",
           "YOLO_WITH_IMAGES": "YOLO", "PASCAL_VOC": "VOC", "CONLL": "CONLL2003"}


def lookup(name: str) -> Format | None:
    key = (name or "").strip().upper()
    return FORMATS.get(ALIASES.get(key, key))


@dataclass(frozen=True)
class Offer:
    format: Format
    reason: str | None = None  # why it is not offered; None when it is

    @property
    def available(self) -> bool:
        return self.reason is None


@lru_cache(maxsize=128)
def _converter_view(xml: str) -> tuple[frozenset[str], tuple[tuple[str, tuple[tuple[str, bool], ...]], ...],
                                       tuple[str, ...]]:
    """(formats the converter supports, (control tag, ((object tag, valueList), ...)) per control, data keys)."""
    from label_studio_sdk.converter import Converter

    try:
        converter = Converter(config=xml, project_dir=None, download_resources=False)
    except Exception:  # a config the converter cannot read: only our own writers apply
        return frozenset(), (), ()
    schema: dict[str, Any] = converter._schema
    controls = tuple((info["type"], tuple((i["type"], bool(i.get("valueList"))) for i in info["inputs"]))
                     for info in schema.values())
    return frozenset(converter.supported_formats), controls, tuple(sorted(converter._data_keys))


def converter_data_key(config_xml: str) -> str | None:
    """The data key the converter reads for this config, when it reads one only."""
    _, _, data_keys = _converter_view(config_xml)
    return data_keys[0] if len(data_keys) == 1 else None


def _has(controls, object_tag: str, *control_tags: str) -> bool:
    return any(tag in control_tags and any(o == object_tag for o, _ in inputs) for tag, inputs in controls)


def _why_not(fmt: Format, controls, data_keys: tuple[str, ...]) -> str:
    if not controls:
        return "label-studio-sdk's converter cannot read this label config"
    if len(data_keys) > 1:
        keys = ", ".join(f"${k}" for k in data_keys)
        return (f"the config shows more than one data field ({keys}); label-studio-sdk's converter writes "
                f"{fmt.title} only for configs with one")
    if any(value_list for _, inputs in controls for _, value_list in inputs):
        return f"the config shows a list of images (valueList), which {fmt.title} cannot hold"
    has = "this config has " + ", ".join(sorted({f"<{tag}> on <{o}>" for tag, inputs in controls for o, _ in inputs}))
    if fmt.name == "CONLL2003":
        return f"CoNLL 2003 holds named entities: it needs a <Text> labelled with <Labels>; {has}"
    if fmt.name == "VOC":
        return f"Pascal VOC holds boxes: it needs an <Image> labelled with <RectangleLabels>; {has}"
    if _has(controls, "Image", "KeyPointLabels") and not _has(controls, "Image", "RectangleLabels"):
        return f"{fmt.title} needs <RectangleLabels> beside <KeyPointLabels> for its categories; {has}"
    return (f"{fmt.title} holds boxes and shapes: it needs an <Image> labelled with <RectangleLabels>, "
            f"<PolygonLabels> or <KeyPointLabels>; {has}")


def offers(config_xml: str) -> list[Offer]:
    """Every format, each with the reason it is not offered for this config (None when it is)."""
    supported, controls, data_keys = _converter_view(config_xml)
    result = []
    for fmt in FORMATS.values():
        reason = None
        if fmt.converted and fmt.name not in supported:
            reason = _why_not(fmt, controls, data_keys)
        result.append(Offer(fmt, reason))
    return result


def offer(config_xml: str, name: str) -> Offer | None:
    fmt = lookup(name)
    if fmt is None:
        return None
    if not fmt.converted:  # fits every config: no need to ask the converter
        return Offer(fmt)
    return next(o for o in offers(config_xml) if o.format.name == fmt.name)
