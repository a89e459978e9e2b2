"""Label Studio XML label configs: parse and check a config, check an item's
data against it, and validate annotation or prediction results against it.

`parse_config` turns the XML into a `LabelConfig` (cached per XML string), the
one object the rest of the code asks about a project's config: which data keys
an item needs, which controls exist with which labels, what kind of labeling
job it is. `check_data` and `validate_result` raise `DataError` and
`ResultError` with words that say what is wrong and where. `TEMPLATES` holds
ready configs for the common cases.

Pure module: no ORM, no Flask. It leans on label-studio-sdk's `LabelInterface`
and adds the checks the SDK lacks (unknown tags, single choice, numbers,
ranges, rectangle coordinates).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import orjson
from label_studio_sdk.label_interface import LabelInterface
from lxml import etree

__all__ = [
    "Control",
    "DataError",
    "DataObject",
    "KINDS",
    "LabelConfig",
    "LabelConfigError",
    "ResultError",
    "TEMPLATES",
    "Template",
    "check_data",
    "parse_config",
    "validate_result",
]


# --- errors ---------------------------------------------------------------


class LabelConfigError(ValueError):
    """A label config we refuse; `tag` and `line` say where when known."""

    def __init__(self, message: str, tag: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.tag = tag
        self.line = line


class DataError(ValueError):
    """An item's data does not fit the config (a missing `$variable`...)."""

    def __init__(self, message: str, key: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.key = key
        self.where = where


class ResultError(ValueError):
    """A Label Studio result list that does not fit the config.

    `where` is the caller's locator ("item 17"), `region` the index of the
    region in the result list, `region_id` its "id" if it has one, `field` the
    field at fault ("from_name", "value.choices"...).
    """

    def __init__(
        self,
        message: str,
        where: str,
        region: int | None = None,
        region_id: str | None = None,
        field: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.where = where
        self.region = region
        self.region_id = region_id
        self.field = field


# --- the tags we support --------------------------------------------------

# Explicit allow-lists: the SDK accepts any tag name silently, and the
# embedded front end (Label Studio 1.4.0) would then render a broken page.
OBJECT_TAGS = frozenset({"Text", "HyperText", "Image", "Audio", "Paragraphs", "Table", "List"})
CONTROL_TAGS = frozenset(
    {
        "Choices", "Labels", "HyperTextLabels", "ParagraphLabels",
        "Rectangle", "RectangleLabels", "Polygon", "PolygonLabels",
        "KeyPoint", "KeyPointLabels", "Ellipse", "EllipseLabels",
        "Brush", "BrushLabels", "Rating", "Number", "TextArea",
        "Taxonomy", "DateTime", "Ranker", "Pairwise",
    }
)
# Layout tags, and the children that give a control its labels. Relations has
# no name or toName: it only lists the relation labels of the whole config.
VISUAL_TAGS = frozenset(
    {"View", "Header", "Style", "Filter", "Collapse", "Panel",
     "Choice", "Label", "Relations", "Relation", "Shortcut", "Bucket"}
)
SUPPORTED_TAGS = OBJECT_TAGS | CONTROL_TAGS | VISUAL_TAGS
_BY_LOWER = {t.lower(): t for t in SUPPORTED_TAGS}

# Controls whose result carries a list of labels; without a <Label>/<Choice>
# child (or a dynamic value="$...") they offer the annotator nothing.
_LABELLED_CONTROLS = frozenset(
    {"Choices", "Labels", "HyperTextLabels", "ParagraphLabels", "RectangleLabels",
     "PolygonLabels", "KeyPointLabels", "EllipseLabels", "BrushLabels", "Taxonomy"}
)
# The key under "value" that holds the labels, for the controls we check.
_LABEL_KEYS = {
    "Choices": "choices", "Labels": "labels", "HyperTextLabels": "hypertextlabels",
    "ParagraphLabels": "paragraphlabels", "RectangleLabels": "rectanglelabels",
    "PolygonLabels": "polygonlabels", "KeyPointLabels": "keypointlabels",
    "EllipseLabels": "ellipselabels", "BrushLabels": "brushlabels",
}
_GEOMETRY = {"rectangle", "polygon", "keypoint", "ellipse", "brush"}
_TEXT_OBJECTS = frozenset({"Text", "HyperText", "Paragraphs", "Table"})
_PLAIN_TEXT_OBJECTS = frozenset({"Text", "HyperText"})  # data is one string
_MEDIA_OBJECTS = frozenset({"Image", "Audio"})

KINDS = (
    "text_classification", "multi_label", "named_entities", "image_classification",
    "bounding_boxes", "polygons", "rating", "transcription", "other",
)


# --- the parsed config ----------------------------------------------------


@dataclass(frozen=True)
class DataObject:
    """An object tag: what the annotator looks at, and the data key it shows."""

    name: str
    tag: str
    data_key: str | None  # None when value is a constant, not "$key"


@dataclass(frozen=True)
class Control:
    """A control tag: what the annotator produces, as the result checks see it."""

    name: str
    tag: str                       # as in the XML: "Choices", "RectangleLabels"...
    to_name: tuple[str, ...]
    labels: tuple[str, ...] = ()   # Choice/Label values (alias when given)
    choice: str | None = None      # "single" or "multiple" for labelled controls
    min: float | None = None       # Rating: 1; Number: its min attribute
    max: float | None = None       # Rating: maxRating (default 5); Number: max
    per_region: bool = False
    required: bool = False         # required="true" and not under visibleWhen
    dynamic_labels: bool = False   # labels come from the data (value="$...")

    @property
    def result_type(self) -> str:
        """The `type` a result region of this control carries."""
        return self.tag.lower()

    @property
    def label_key(self) -> str | None:
        """The key under a region's `value` that holds its labels."""
        return _LABEL_KEYS.get(self.tag)


@dataclass(frozen=True, eq=False)
class LabelConfig:
    """A parsed, checked label config. Build it with `parse_config`."""

    xml: str
    data_keys: tuple[str, ...]
    controls: tuple[Control, ...]
    objects: tuple[DataObject, ...]
    kind: str
    media_keys: tuple[str, ...]    # data keys shown by <Image>/<Audio>
    text_keys: tuple[str, ...]     # data keys shown by <Text>/<HyperText>
    hotkeys: Mapping[str, tuple[str, str]]  # hotkey -> (control name, label)
    interface: LabelInterface = field(repr=False)
    # name -> Control and name -> DataObject, for the per-submit checks
    _controls_by_name: Mapping[str, Control] = field(repr=False, default_factory=dict)
    _objects_by_name: Mapping[str, DataObject] = field(repr=False, default_factory=dict)
    # canonical JSON of results found valid (see validate_result)
    _valid_results: dict[tuple[bool, bytes], bool] = field(repr=False, default_factory=dict)

    def control(self, name: str) -> Control:
        """The control called `name`; KeyError if there is none."""
        return self._controls_by_name[name]


# --- parsing ----------------------------------------------------------------

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)
_LXML_POSITION = re.compile(r", line \d+, column \d+$")


def parse_config(xml: str) -> LabelConfig:
    """Parse and check a Label Studio XML label config.

    Raises `LabelConfigError` naming the tag (and line) for markup that is not
    well-formed, a DOCTYPE, a tag we do not support, a duplicate name, a
    control without name/toName or whose toName names nothing or no object
    tag, a labelled control without labels, and whatever the SDK refuses.
    The result is cached per XML string: it is immutable and the per-submit
    `validate_result` reuses its `LabelInterface`.
    """
    if not isinstance(xml, str):
        raise LabelConfigError(f"the label config must be text, got {type(xml).__name__}")
    return _parse_config_cached(xml)


@lru_cache(maxsize=256)
def _parse_config_cached(xml: str) -> LabelConfig:
    if not xml.strip():
        raise LabelConfigError("the label config is empty")
    root = _parse_xml(xml)
    _check_tree(root)

    # lxml refuses a str that carries an encoding declaration, and the SDK
    # parses the str we give it: hand it the config without the declaration.
    sdk_xml = _XML_DECLARATION.sub("", xml, count=1)
    try:
        li = LabelInterface(sdk_xml)
        li.validate()
    except Exception as exc:  # the SDK raises several unrelated classes
        raise LabelConfigError(f"Label Studio refuses the config: {exc}") from exc

    return _build(xml, root, li)


def _parse_xml(xml: str) -> etree._Element:
    # Our own parse, for line numbers and a safe parser: no entities, no
    # network, no DTD loading.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno, None)
        where = f"line {line}" + (f", column {column}" if column else "")
        reason = _LXML_POSITION.sub("", exc.msg or "")  # we say where ourselves
        raise LabelConfigError(
            f"the label config is not well-formed XML at {where}: {reason}", line=line
        ) from exc
    if root is None:
        raise LabelConfigError("the label config is empty")
    if root.getroottree().docinfo.doctype:
        # The SDK re-parses with lxml's default parser; a DOCTYPE is never
        # needed in a label config and is the door to entity tricks.
        raise LabelConfigError("the label config may not contain a DOCTYPE")
    return root


def _where(el: etree._Element) -> str:
    name = el.get("name")
    shown = f'<{el.tag} name="{name}">' if name else f"<{el.tag}>"
    return f"{shown} at line {el.sourceline}"


def _check_tree(root: etree._Element) -> None:
    if root.tag != "View":
        raise LabelConfigError(
            f"the label config must start with <View>, not <{root.tag}> (line {root.sourceline})",
            tag=str(root.tag), line=root.sourceline,
        )
    named: dict[str, etree._Element] = {}
    controls: list[etree._Element] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue  # comments (the sample task lives in one) and PIs
        tag = el.tag
        if tag not in SUPPORTED_TAGS:
            hint = _BY_LOWER.get(tag.lower())
            if hint:
                msg = (f"unknown tag <{tag}> at line {el.sourceline}: "
                       f"tag names are case-sensitive, did you mean <{hint}>?")
            else:
                msg = f"unknown tag <{tag}> at line {el.sourceline}: it is not a Label Studio tag we support"
            raise LabelConfigError(msg, tag=tag, line=el.sourceline)
        name = el.get("name")
        if tag in OBJECT_TAGS or tag in CONTROL_TAGS:
            if not name:
                raise LabelConfigError(f"<{tag}> at line {el.sourceline} has no name", tag=tag, line=el.sourceline)
            if tag in OBJECT_TAGS and not (el.get("value") or el.get("valueList")):
                raise LabelConfigError(
                    f"{_where(el)} has no value: say which data it shows, e.g. value=\"$text\"",
                    tag=tag, line=el.sourceline,
                )
        if name:
            if name in named:
                first = named[name]
                raise LabelConfigError(
                    f'duplicate name "{name}": {_where(el)} and <{first.tag}> at line {first.sourceline}',
                    tag=tag, line=el.sourceline,
                )
            named[name] = el
        if tag in CONTROL_TAGS:
            controls.append(el)

    if not controls:
        raise LabelConfigError(
            "the label config has no control tag (Choices, Labels, RectangleLabels, TextArea...): "
            "annotators would have nothing to do"
        )
    for el in controls:
        to_name = el.get("toName")
        if not to_name:
            raise LabelConfigError(
                f"{_where(el)} has no toName: a control must name the object tag it labels",
                tag=el.tag, line=el.sourceline,
            )
        for target in to_name.split(","):
            target_el = named.get(target)
            if target_el is None:
                raise LabelConfigError(
                    f'{_where(el)}: toName="{target}" names nothing; names in the config: {", ".join(sorted(named))}',
                    tag=el.tag, line=el.sourceline,
                )
            if target_el.tag not in OBJECT_TAGS:
                raise LabelConfigError(
                    f'{_where(el)}: toName="{target}" names <{target_el.tag}>, not an object tag '
                    f'({", ".join(sorted(OBJECT_TAGS))}), so the control has no object',
                    tag=el.tag, line=el.sourceline,
                )
        if el.tag in _LABELLED_CONTROLS and not (el.get("value") or "").startswith("$"):
            if not any(child.tag in ("Choice", "Label") for child in el.iter()):
                child = "Choice" if el.tag in ("Choices", "Taxonomy") else "Label"
                raise LabelConfigError(
                    f"{_where(el)} has no <{child}>: give it at least one",
                    tag=el.tag, line=el.sourceline,
                )


def _number(el: etree._Element, attribute: str, default: str | None = None) -> float | None:
    value = el.get(attribute, default)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise LabelConfigError(
            f'{_where(el)}: {attribute}="{value}" is not a number', tag=el.tag, line=el.sourceline
        )
    return number


def _conditional(el: etree._Element) -> bool:
    return any(a.get("visibleWhen") for a in el.iterancestors()) or bool(el.get("visibleWhen"))


def _build(xml: str, root: etree._Element, li: LabelInterface) -> LabelConfig:
    elements = {el.get("name"): el for el in root.iter() if isinstance(el.tag, str) and el.get("name")}

    objects = []
    for o in li.objects or ():
        key = o.value_name if o.value_is_variable else None
        objects.append(DataObject(name=o.name, tag=o.tag, data_key=key))

    controls = []
    hotkeys: dict[str, tuple[str, str]] = {}
    for c in li.controls or ():
        tag = c.tag
        if tag not in CONTROL_TAGS:
            continue  # the SDK calls any tag with name+toName a control
        el = elements[c.name]
        lo = hi = None
        if tag == "Rating":
            lo = 1.0  # the front end's stars start at one
            hi = _number(el, "maxRating", "5")
        elif tag == "Number":
            lo = _number(el, "min")
            hi = _number(el, "max")
        choice = None
        if tag in _LABEL_KEYS:
            choice = "multiple" if el.get("choice") == "multiple" else "single"
        controls.append(
            Control(
                name=c.name,
                tag=tag,
                to_name=tuple(c.to_name),
                labels=tuple(c.labels or ()),
                choice=choice,
                min=lo,
                max=hi,
                per_region=el.get("perRegion") == "true",
                # Label Studio enforces "required" only while the control is
                # shown: one under visibleWhen may be absent from a result.
                required=el.get("required") == "true" and not _conditional(el),
                dynamic_labels=(el.get("value") or "").startswith("$"),
            )
        )
        for child in el.iter("Choice", "Label"):
            key = child.get("hotkey")
            value = child.get("alias") or child.get("value")
            if key and value and key not in hotkeys:
                hotkeys[key] = (c.name, value)

    by_object = {o.name: o for o in objects}
    data_keys = tuple(dict.fromkeys(o.value_name for o in (li.objects or ()) if o.value_is_variable))
    media_keys = tuple(dict.fromkeys(o.data_key for o in objects if o.tag in _MEDIA_OBJECTS and o.data_key))
    text_keys = tuple(dict.fromkeys(o.data_key for o in objects if o.tag in _PLAIN_TEXT_OBJECTS and o.data_key))

    return LabelConfig(
        xml=xml,
        data_keys=data_keys,
        controls=tuple(controls),
        objects=tuple(objects),
        kind=_kind(controls, by_object),
        media_keys=media_keys,
        text_keys=text_keys,
        hotkeys=hotkeys,
        interface=li,
        _controls_by_name={c.name: c for c in controls},
        _objects_by_name=by_object,
    )


def _control_kind(control: Control, objects: Mapping[str, DataObject]) -> str:
    targets = {objects[n].tag for n in control.to_name if n in objects}
    tag = control.tag
    if tag == "Choices":
        if targets == {"Image"}:
            return "image_classification"
        if targets and targets <= _TEXT_OBJECTS:
            return "multi_label" if control.choice == "multiple" else "text_classification"
        return "other"
    if tag in ("Labels", "HyperTextLabels", "ParagraphLabels"):
        return "named_entities" if targets and targets <= _TEXT_OBJECTS else "other"
    if tag in ("Rectangle", "RectangleLabels"):
        return "bounding_boxes"
    if tag in ("Polygon", "PolygonLabels"):
        return "polygons"
    if tag == "Rating":
        return "rating"
    if tag == "TextArea":
        return "transcription"
    return "other"


def _kind(controls: list[Control], objects: Mapping[str, DataObject]) -> str:
    # Per-region controls describe regions (a text per box, say): the kind
    # comes from the controls that make the regions or label the whole item.
    # Several different kinds at top level make the config "other".
    kinds = {_control_kind(c, objects) for c in controls if not c.per_region}
    if len(kinds) == 1:
        return kinds.pop()
    # Bare <Rectangle>/<Polygon> drawn with a shared <Labels> control: the
    # geometry decides.
    if kinds in ({"bounding_boxes", "other"}, {"polygons", "other"}) and all(
        c.tag in ("Labels", "Rectangle", "Polygon") for c in controls if not c.per_region
    ):
        return (kinds - {"other"}).pop()
    return "other"


# --- data ------------------------------------------------------------------


def check_data(config: LabelConfig, data: Any, where: str) -> None:
    """Check that an item's `data` has every `$variable` the config shows.

    Raises `DataError` naming the missing or wrong key and `where` (e.g.
    "line 12"). Text and media keys must hold a (non-empty for media) string.
    """
    if not isinstance(data, dict):
        raise DataError(f"{where}: the item's data must be an object, got {_type_word(data)}", where=where)
    for obj in config.objects:
        key = obj.data_key
        if key is None:
            continue
        value = data.get(key)
        if value is None:
            has = ", ".join(sorted(map(str, data))) or "nothing"
            raise DataError(
                f'{where}: the data has no "{key}" (the config\'s ${key}, shown by <{obj.tag} name="{obj.name}">); '
                f"it has: {has}",
                key=key, where=where,
            )
        if obj.tag in ("Text", "HyperText") and not isinstance(value, str):
            raise DataError(f'{where}: "{key}" must be text, got {_type_word(value)}', key=key, where=where)
        if obj.tag in _MEDIA_OBJECTS:
            if isinstance(value, list) and obj.tag == "Image":  # valueList="$images"
                ok = bool(value) and all(isinstance(v, str) and v for v in value)
            else:
                ok = isinstance(value, str) and bool(value.strip())
            if not ok:
                raise DataError(
                    f'{where}: "{key}" must be the URL or path of the {obj.tag.lower()}, got {_type_word(value)}',
                    key=key, where=where,
                )


def _type_word(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"the text {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- results -------------------------------------------------------------

# Controls whose whole value our checks cover: the SDK's model of it has no
# field (choices: a list of offered strings) that _check_region leaves out.
# A result of only these skips the SDK's validate_prediction, which costs more
# than everything else an import with annotations does per row. (The SDK
# also reads a value nested under the control's own name; such a value goes
# to it as before.)
_CHECKED_IN_FULL = frozenset({"Choices"})
_SDK_LOCATION = re.compile(r"^(Region|Relation) (\d+): (.*)$", re.S)
_RELATION_FIELD = re.compile(r"'(from_id|to_id|type|direction)'|^(Type|Direction)\b")


def validate_result(config: LabelConfig, result: Any, where: str, *, partial: bool = False) -> None:
    """Check a Label Studio result list (an annotation's or a prediction's).

    Our checks run first (from_name, to_name, type, labels, single choice,
    numbers and their range, rectangle/polygon/keypoint coordinates, required
    controls unless `partial`), then the SDK's `validate_prediction` for the
    value shapes we do not check ourselves. Raises `ResultError` for the
    first problem, naming `where`, the region and the field; returns None.
    Pass `partial=True` for predictions, which may cover only some controls.

    A result found valid once is remembered per config: the verdict depends on
    nothing else, and on classification work the same few results come back
    all day (the SDK's check is most of a submit's cost otherwise).
    """
    try:
        key = (partial, orjson.dumps(result, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # not JSON: the checks below say what is wrong with it
        key = None
    valid = config._valid_results
    if key is not None and key in valid:
        return
    _validate_result(config, result, where, partial=partial)
    if key is not None:
        if len(valid) >= VALID_RESULTS_KEPT:
            valid.clear()
        valid[key] = True


VALID_RESULTS_KEPT = 10_000  # per config; past it the memory starts again


def _validate_result(config: LabelConfig, result: Any, where: str, *, partial: bool) -> None:
    if not isinstance(result, list):
        raise ResultError(
            f"{where}: the result must be a list of regions, got {_type_word(result)}", where, field="result"
        )
    controls = config._controls_by_name
    seen: set[str] = set()
    checked_in_full = True  # by our checks alone: every region, none of them a relation
    for i, region in enumerate(result):
        if not isinstance(region, dict):
            raise ResultError(f"{where}, region {i}: a region must be an object, got {_type_word(region)}", where, i)
        if region.get("type") == "relation":
            checked_in_full = False  # from_id/to_id/direction are the SDK's check, below
            continue
        control = _check_region(config, controls, region, i, where)
        seen.add(control.name)
        if checked_in_full and (control.tag not in _CHECKED_IN_FULL or control.name in region["value"]):
            checked_in_full = False

    if not partial:
        for c in config.controls:
            if c.required and not c.per_region and c.name not in seen:
                raise ResultError(
                    f'{where}: control "{c.name}" is required but the result has no region for it',
                    where, field="from_name",
                )

    if checked_in_full:
        return
    errors = config.interface.validate_prediction({"result": result}, return_errors=True)
    if errors:
        message = errors[0]
        if isinstance(message, list):  # the SDK appends relation errors as a list
            message = message[0] if message else "invalid relation"
        m = _SDK_LOCATION.match(message)
        if m:
            index = int(m.group(2))
            region = result[index] if index < len(result) else {}
            rid = region.get("id") if isinstance(region, dict) else None
            text = m.group(3)
            if m.group(1) == "Region":
                label, field_name = "region", "value"
            else:
                label = "relation"
                named = _RELATION_FIELD.search(text)
                field_name = (named.group(1) or named.group(2)).lower() if named else None
            raise ResultError(f"{where}, {label} {index}{_id_part(rid)}: {text}", where, index, rid, field_name)
        raise ResultError(f"{where}: {message}", where)


def _id_part(rid: Any) -> str:
    return f" (id {rid})" if rid is not None else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_region(
    config: LabelConfig, controls: Mapping[str, Control], region: dict, i: int, where: str
) -> Control:
    """Check one region against its control, which it returns."""
    rid = region.get("id")
    at = f"{where}, region {i}{_id_part(rid)}"

    def fail(field_name: str, text: str) -> ResultError:
        return ResultError(f"{at}: {field_name} {text}", where, i, rid, field_name)

    for key in ("from_name", "to_name", "type", "value"):
        if key not in region:
            raise fail(key, "is missing")
    from_name, to_name, rtype, value = region["from_name"], region["to_name"], region["type"], region["value"]

    control = controls.get(from_name) if isinstance(from_name, str) else None
    if control is None:
        raise fail("from_name", f'"{from_name}" is not a control of the config (controls: {", ".join(controls)})')
    if to_name not in control.to_name:
        raise fail(
            "to_name", f'"{to_name}" is not what control "{from_name}" labels (toName: {", ".join(control.to_name)})'
        )
    if not isinstance(value, dict):
        raise fail("value", f"must be an object, got {_type_word(value)}")

    label_key = control.label_key
    geometry = control.result_type
    if rtype != control.result_type:
        merged = _merged_geometry(config, control, rtype)
        if merged is None:
            raise fail(
                "type",
                f'"{rtype}" is wrong for control "{from_name}" (<{control.tag}>): expected "{control.result_type}"',
            )
        # <Labels> shared with a <Rectangle>/<Polygon>: one region of type
        # "rectanglelabels" carrying both the geometry and the labels.
        geometry = merged
        label_key = rtype if rtype in value else "labels"

    if label_key is not None:
        _check_labels(control, value, label_key, fail)
    tag = control.tag
    if tag == "Rating":
        _check_rating(control, value, fail)
    elif tag == "Number":
        _check_number(control, value, fail)
    if geometry.startswith("rectangle"):
        _check_rectangle(value, fail)
    elif geometry.startswith("polygon"):
        _check_polygon(value, fail)
    elif geometry.startswith(("keypoint", "ellipse")):
        _check_point(value, fail)
    return control


def _merged_geometry(config: LabelConfig, control: Control, rtype: Any) -> str | None:
    if control.tag != "Labels" or not isinstance(rtype, str) or not rtype.endswith("labels"):
        return None
    geometry = rtype[: -len("labels")]
    if geometry not in _GEOMETRY:
        return None
    targets = set(control.to_name)
    for other in config.controls:
        if other.result_type == geometry and targets & set(other.to_name):
            return geometry
    return None


def _check_labels(control: Control, value: dict, key: str, fail) -> None:
    field_name = f"value.{key}"
    labels = value.get(key)
    if labels is None:
        raise fail(field_name, "is missing")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise fail(field_name, f"must be a list of strings, got {_type_word(labels)}")
    if not labels:
        raise fail(field_name, "is empty")
    if not control.dynamic_labels:
        allowed = control.labels
        for label in labels:
            if label not in allowed:
                raise fail(
                    field_name, f'has "{label}", which control "{control.name}" does not offer ({", ".join(allowed)})'
                )
    if control.choice == "single" and len(labels) > 1:
        raise fail(
            field_name,
            f'has {len(labels)} values ({", ".join(labels)}) but control "{control.name}" takes one (choice="single")',
        )


def _check_rating(control: Control, value: dict, fail) -> None:
    rating = value.get("rating")
    if rating is None:
        raise fail("value.rating", "is missing")
    if not _is_number(rating) or (isinstance(rating, float) and not rating.is_integer()):
        raise fail("value.rating", f"must be a whole number, got {_type_word(rating)}")
    if not (control.min <= rating <= control.max):
        raise fail("value.rating", f"{rating} is out of range {control.min:g}..{control.max:g}")


def _check_number(control: Control, value: dict, fail) -> None:
    number = value.get("number")
    if number is None:
        raise fail("value.number", "is missing")
    if not _is_number(number):
        raise fail("value.number", f"must be a number, got {_type_word(number)}")
    if control.min is not None and number < control.min:
        raise fail("value.number", f"{number} is below the minimum {control.min:g}")
    if control.max is not None and number > control.max:
        raise fail("value.number", f"{number} is above the maximum {control.max:g}")


def _percent(value: dict, key: str, fail) -> float:
    # Label Studio stores coordinates as percentages of the image size.
    v = value.get(key)
    if v is None:
        raise fail(f"value.{key}", "is missing")
    if not _is_number(v):
        raise fail(f"value.{key}", f"must be a number (percent of the image), got {_type_word(v)}")
    if not (0 <= v <= 100):
        raise fail(f"value.{key}", f"{v} is outside 0..100 (percent of the image)")
    return v


_EDGE_TOLERANCE = 0.01  # the front end's float arithmetic overshoots 100 slightly


def _check_rectangle(value: dict, fail) -> None:
    x, y = _percent(value, "x", fail), _percent(value, "y", fail)
    w, h = _percent(value, "width", fail), _percent(value, "height", fail)
    rotation = value.get("rotation", 0)
    if rotation is not None and not _is_number(rotation):
        raise fail("value.rotation", f"must be a number, got {_type_word(rotation)}")
    if not rotation:  # a rotated box may legitimately reach past the edge
        if x + w > 100 + _EDGE_TOLERANCE:
            raise fail("value.width", f"x + width = {x + w:g} reaches past the right edge (100)")
        if y + h > 100 + _EDGE_TOLERANCE:
            raise fail("value.height", f"y + height = {y + h:g} reaches past the bottom edge (100)")


def _check_polygon(value: dict, fail) -> None:
    points = value.get("points")
    if not isinstance(points, list) or len(points) < 3:
        raise fail("value.points", "must be a list of at least 3 [x, y] points")
    for n, p in enumerate(points):
        if not (isinstance(p, list) and len(p) == 2 and _is_number(p[0]) and _is_number(p[1])):
            raise fail(f"value.points[{n}]", f"must be [x, y] numbers, got {p!r:.60}")
        if not (0 <= p[0] <= 100 and 0 <= p[1] <= 100):
            raise fail(f"value.points[{n}]", f"{p} is outside 0..100 (percent of the image)")


def _check_point(value: dict, fail) -> None:
    _percent(value, "x", fail)
    _percent(value, "y", fail)


# --- templates ---------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A ready label config for a common case, with a sample item and result."""

    title: str
    xml: str
    sample_data: dict
    sample_result: list


def _choices_result(name: str, to: str, *choices: str) -> dict:
    return {"id": "c1", "from_name": name, "to_name": to, "type": "choices", "value": {"choices": list(choices)}}


TEMPLATES: dict[str, Template] = {
    "text_classification": Template(
        title="Text classification",
        xml="""<View>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text" choice="single" showInline="true" required="true">
    <Choice value="Positive" hotkey="1"/>
    <Choice value="Negative" hotkey="2"/>
    <Choice value="Neutral" hotkey="3"/>
  </Choices>
</View>""",
        sample_data={"text": "The delivery was fast and the product works well."},
        sample_result=[_choices_result("label", "text", "Positive")],
    ),
    "multi_label": Template(
        title="Multi-label text classification",
        xml="""<View>
  <Text name="text" value="$text"/>
  <Choices name="topics" toName="text" choice="multiple" required="true">
    <Choice value="Billing"/>
    <Choice value="Shipping"/>
    <Choice value="Product quality"/>
    <Choice value="Other"/>
  </Choices>
</View>""",
        sample_data={"text": "I was charged twice and the parcel arrived broken."},
        sample_result=[_choices_result("topics", "text", "Billing", "Product quality")],
    ),
    "named_entities": Template(
        title="Named entities in text",
        xml="""<View>
  <Labels name="label" toName="text">
    <Label value="PER" background="#ffb3b3" hotkey="p"/>
    <Label value="ORG" background="#b3d9ff" hotkey="o"/>
    <Label value="LOC" background="#c2f0c2" hotkey="l"/>
  </Labels>
  <Text name="text" value="$text" granularity="word"/>
</View>""",
        sample_data={"text": "Ada Lovelace worked with Charles Babbage in London."},
        sample_result=[
            {"id": "e1", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 0, "end": 12, "text": "Ada Lovelace", "labels": ["PER"]}},
            {"id": "e2", "from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 44, "end": 50, "text": "London", "labels": ["LOC"]}},
        ],
    ),
    "image_classification": Template(
        title="Image classification",
        xml="""<View>
  <Image name="image" value="$image" zoom="true"/>
  <Choices name="label" toName="image" choice="single" required="true">
    <Choice value="Cat"/>
    <Choice value="Dog"/>
    <Choice value="Neither"/>
  </Choices>
</View>""",
        sample_data={"image": "/projects/samples/cat.jpg"},
        sample_result=[_choices_result("label", "image", "Cat")],
    ),
    "bounding_boxes": Template(
        title="Object detection with bounding boxes",
        xml="""<View>
  <Image name="image" value="$image" zoom="true"/>
  <RectangleLabels name="label" toName="image" strokeWidth="2">
    <Label value="Car" background="#ff6666"/>
    <Label value="Person" background="#6699ff"/>
  </RectangleLabels>
</View>""",
        sample_data={"image": "/projects/samples/street.jpg"},
        sample_result=[
            {"id": "b1", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
             "original_width": 1920, "original_height": 1080, "image_rotation": 0,
             "value": {"x": 10.5, "y": 20, "width": 30, "height": 25.25, "rotation": 0,
                       "rectanglelabels": ["Car"]}},
        ],
    ),
    "polygons": Template(
        title="Semantic segmentation with polygons",
        xml="""<View>
  <Image name="image" value="$image" zoom="true"/>
  <PolygonLabels name="label" toName="image" strokeWidth="2" pointSize="small">
    <Label value="Road" background="#999999"/>
    <Label value="Building" background="#cc9966"/>
  </PolygonLabels>
</View>""",
        sample_data={"image": "/projects/samples/street.jpg"},
        sample_result=[
            {"id": "p1", "from_name": "label", "to_name": "image", "type": "polygonlabels",
             "original_width": 1920, "original_height": 1080,
             "value": {"points": [[10, 10], [40, 12], [35, 50], [8, 45]], "closed": True,
                       "polygonlabels": ["Building"]}},
        ],
    ),
    "rating": Template(
        title="Rate a text",
        xml="""<View>
  <Text name="text" value="$text"/>
  <Rating name="rating" toName="text" maxRating="5" icon="star" size="medium" required="true"/>
</View>""",
        sample_data={"text": "A summary to rate for faithfulness to its source."},
        sample_result=[
            {"id": "r1", "from_name": "rating", "to_name": "text", "type": "rating", "value": {"rating": 4}},
        ],
    ),
    "transcription": Template(
        title="Audio transcription",
        xml="""<View>
  <Audio name="audio" value="$audio"/>
  <TextArea name="transcription" toName="audio" rows="4" editable="true" maxSubmissions="1" required="true"/>
</View>""",
        sample_data={"audio": "/projects/samples/hello.wav"},
        sample_result=[
            {"id": "t1", "from_name": "transcription", "to_name": "audio", "type": "textarea",
             "value": {"text": ["hello and welcome"]}},
        ],
    ),
}
