"""Our consensus file: one line (JSONL) or row (CSV) per scored item.

Each row holds the item's data, its consensus result (Label Studio result
JSON) and a readable label made from it, the confidence and agreement of
the consensus, how many annotators it rests on, whether the item is a gold
item, and how the consensus was reached (majority, Dawid-Skene, box fusion,
or "gold" for a gold item's known answer).
"""
from __future__ import annotations

import csv
from typing import IO, Any, Iterable, Mapping

from .labelstudio import Written, dumps

COLUMNS = ("item_id", "data", "label", "consensus", "confidence", "agreement", "n_annotators", "is_gold", "method")

# The keys under a region's "value" that hold its labels, in the order they are looked for.
_LABEL_KEYS = ("choices", "labels", "rectanglelabels", "polygonlabels", "keypointlabels", "ellipselabels",
               "brushlabels", "hypertextlabels", "paragraphlabels", "taxonomy")


def consensus_label(result: Any) -> str:
    """A readable label: the labels, ratings, numbers or texts of the
    consensus regions, each once, in order, joined by "|"."""
    seen: list[str] = []
    for region in result or ():
        value = region.get("value") if isinstance(region, dict) else None
        if not isinstance(value, dict):
            continue
        found: list[Any] = []
        for key in _LABEL_KEYS:
            if isinstance(value.get(key), list):
                found = value[key]
                break
        else:
            for key in ("rating", "number", "text", "datetime"):
                if key in value:
                    found = value[key] if isinstance(value[key], list) else [value[key]]
                    break
        for label in found:
            text = "/".join(map(str, label)) if isinstance(label, list) else str(label)
            if text not in seen:
                seen.append(text)
    return "|".join(seen)


def row(item_id: int, data: Mapping[str, Any], consensus: list, confidence: float | None, agreement: float | None,
        n_annotators: int | None, is_gold: bool, method: str) -> dict[str, Any]:
    return {"item_id": item_id, "data": data, "label": consensus_label(consensus), "consensus": consensus,
            "confidence": confidence, "agreement": agreement, "n_annotators": n_annotators,
            "is_gold": is_gold, "method": method}


def write_jsonl(rows: Iterable[Mapping[str, Any]], out: IO[str]) -> Written:
    written = Written()
    for entry in rows:
        out.write(dumps({key: entry[key] for key in COLUMNS}))
        out.write("\n")
        written.items += 1
        written.records += 1
    return written


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return dumps(value)
    return value


def write_csv(rows: Iterable[Mapping[str, Any]], out: IO[str]) -> Written:
    """Open `out` with newline=""."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    written = Written()
    for entry in rows:
        writer.writerow([_cell(entry[key]) for key in COLUMNS])
        written.items += 1
        written.records += 1
    return written
