"""The pure writers of `exports/`, on plain values: no app, no database."""
from __future__ import annotations

import csv
import io
import json
import os
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st
from label_studio_sdk.converter import Converter

from exports import consensus, labelstudio, money, payroll
from exports.formats import converter_data_key, lookup, offers
from exports.media import MediaFiles, safe_suffix
from exports.pseudonyms import Pseudonyms
from tests.conftest import IMAGE_CONFIG, TEXT_CONFIG, choice

NER_CONFIG = """<View><Labels name="label" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
<Text name="text" value="$text"/></View>"""
MIXED_CONFIG = """<View><Text name="title" value="$title"/><Image name="image" value="$image"/>
<Choices name="topic" toName="title"><Choice value="Road"/></Choices>
<RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels></View>"""
TITLED_CONFIG = """<View><Text name="title" value="$title"/><Image name="image" value="$image"/>
<RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels></View>"""


def tasks_with_annotations() -> list[dict]:
    def annotation(i, label, created, who):
        return {"id": i, "completed_by": who, "result": choice(label), "created_at": created,
                "updated_at": created, "lead_time": 3.5, "was_cancelled": False}

    return [
        {"id": 1, "data": {"text": "good, \"very\" good", "meta": {"source": "web"}},
         "annotations": [annotation(10, "Positive", "2026-01-01T10:00:00+00:00", "ab12"),
                         annotation(11, "Neutral", "2026-01-02T10:00:00+00:00", "cd34")]},
        {"id": 2, "data": {"text": "bad\tthing\nnew line", "meta": {"source": "app"}},
         "annotations": [annotation(12, "Negative", "2026-01-01T11:00:00+00:00", "ab12"),
                         {**annotation(13, "Positive", "2026-01-01T12:00:00+00:00", "cd34"), "was_cancelled": True}]},
        {"id": 3, "data": {"text": "nobody labelled this", "meta": {"source": "web"}}, "annotations": []},
    ]


CONTROLS = {"sentiment": "Choices"}


def sdk_convert(tmp_path, tasks, fmt, config=TEXT_CONFIG) -> str:
    source = tmp_path / "tasks.json"
    source.write_text(json.dumps(tasks))
    out = tmp_path / f"sdk-{fmt}"
    Converter(config=config, project_dir=None, download_resources=False).convert(str(source), str(out), fmt,
                                                                                 is_dir=False)
    name = {"JSON_MIN": "result.json", "CSV": "result.csv", "TSV": "result.csv"}[fmt]
    return (out / name).read_text()


def test_json_min_has_the_records_label_studio_s_converter_writes(tmp_path):
    tasks = tasks_with_annotations()
    ours = io.BytesIO()
    written = labelstudio.write_json_min(tasks, ours, CONTROLS)
    assert json.loads(ours.getvalue()) == json.loads(sdk_convert(tmp_path, tasks, "JSON_MIN"))
    assert (written.items, written.records, written.annotations) == (3, 4, 3)


@pytest.mark.parametrize("fmt,separator", [("CSV", ","), ("TSV", "\t")])
def test_csv_and_tsv_have_the_rows_label_studio_s_converter_writes(tmp_path, fmt, separator):
    tasks = tasks_with_annotations()
    ours = io.StringIO(newline="")
    labelstudio.write_csv(tasks, ours, CONTROLS, ["meta", "text"], separator=separator)
    theirs = list(csv.DictReader(io.StringIO(sdk_convert(tmp_path, tasks, fmt), newline=""), delimiter=separator))
    mine = list(csv.DictReader(io.StringIO(ours.getvalue(), newline=""), delimiter=separator))
    assert len(mine) == len(theirs) == 4
    for a, b in zip(mine, theirs):
        # The converter encodes JSON cells with ujson (no spaces, "\/"): compare their meaning.
        assert {k: _cell(v) for k, v in a.items() if k in b} == {k: _cell(v) for k, v in b.items()}
    assert "sentiment" in mine[-1]  # the control has its column even on the unlabelled item's row


def _cell(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


CELLS = st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none(), st.decimals(), st.lists(st.none()))


@given(st.lists(CELLS, min_size=1, max_size=6), st.sampled_from([",", "\t"]))
def test_csv_cells_are_what_the_csv_module_writes(values, separator):
    # Our rows are joined from cells instead of going through the csv module: byte for byte the same.
    theirs = io.StringIO(newline="")
    csv.writer(theirs, quoting=csv.QUOTE_NONNUMERIC, delimiter=separator).writerow(values)
    assert separator.join(map(labelstudio.csv_cell, values)) + "\r\n" == theirs.getvalue()


def test_csv_renames_a_data_key_named_like_a_control():
    task = {"id": 1, "data": {"sentiment": "the data", "text": "t"}, "annotations": []}
    out = io.StringIO(newline="")
    labelstudio.write_csv([task], out, CONTROLS, ["sentiment", "text"])
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["_data_sentiment"] == "the data" and row["sentiment"] == ""


def test_label_studio_json_is_a_list_with_one_task_per_line():
    out = io.BytesIO()
    written = labelstudio.write_json(tasks_with_annotations(), out)
    assert [t["id"] for t in json.loads(out.getvalue())] == [1, 2, 3]
    assert out.getvalue().splitlines()[1].startswith(b"{\"id\":1,") and len(out.getvalue().splitlines()) == 5
    assert written.annotations == 4
    empty = io.BytesIO()
    labelstudio.write_json([], empty)
    assert json.loads(empty.getvalue()) == []


def test_pseudonyms_are_stable_within_an_export_and_differ_between_exports():
    first, second = Pseudonyms(), Pseudonyms()
    assert first(7) == first(7) != first(8)
    assert first(7) != second(7)
    assert len(first(7)) == 16 and "7" != first(7)
    assert Pseudonyms(b"salt")(7) == Pseudonyms(b"salt")(7)


def test_consensus_rows_as_jsonl_and_csv():
    rows = [consensus.row(1, {"text": "a"}, choice("Positive"), 0.75, 0.5, 4, False, "majority_vote"),
            consensus.row(2, {"image": "/media/x.png"}, [
                {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
                 "value": {"x": 1, "y": 1, "width": 2, "height": 2, "rectanglelabels": ["Car"]}},
                {"from_name": "box", "to_name": "image", "type": "rectanglelabels",
                 "value": {"x": 5, "y": 5, "width": 2, "height": 2, "rectanglelabels": ["Person"]}}],
                1.0, None, None, True, "gold")]
    lines = io.StringIO()
    consensus.write_jsonl(rows, lines)
    parsed = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [(p["label"], p["confidence"], p["is_gold"]) for p in parsed] == [("Positive", 0.75, False),
                                                                           ("Car|Person", 1.0, True)]
    table = io.StringIO(newline="")
    consensus.write_csv(rows, table)
    read = list(csv.DictReader(io.StringIO(table.getvalue())))
    assert read[0]["label"] == "Positive" and read[0]["n_annotators"] == "4" and read[1]["agreement"] == ""
    assert json.loads(read[1]["data"]) == {"image": "/media/x.png"}


def test_formats_a_config_cannot_hold_are_not_offered_and_say_why():
    text = {o.format.name: o for o in offers(TEXT_CONFIG)}
    assert all(text[n].available for n in ("JSON", "JSON_MIN", "CSV", "TSV", "CONSENSUS_JSONL", "CONSENSUS_CSV"))
    for name in ("COCO", "YOLO", "VOC", "CONLL2003"):
        assert not text[name].available and "<Choices> on <Text>" in text[name].reason
    images = {o.format.name: o for o in offers(IMAGE_CONFIG)}
    assert images["COCO"].available and images["YOLO"].available and images["VOC"].available
    assert "named entities" in images["CONLL2003"].reason
    assert {o.format.name for o in offers(NER_CONFIG) if o.available} >= {"CONLL2003"}
    mixed = {o.format.name: o for o in offers(MIXED_CONFIG)}
    assert not mixed["COCO"].available and "more than one data field ($image, $title)" in mixed["COCO"].reason
    # A data field no control labels is only shown: the converter reads the image alone.
    assert {o.format.name: o for o in offers(TITLED_CONFIG)}["COCO"].available
    assert converter_data_key(TITLED_CONFIG) == "image" and converter_data_key(MIXED_CONFIG) is None
    assert lookup("json-min").name == "JSON_MIN" and lookup("COCO_WITH_IMAGES").name == "COCO"
    assert lookup("EXCEL") is None


def test_media_values_outside_the_media_root_are_never_resolved(tmp_path):
    root = tmp_path / "media"
    (root / "ab").mkdir(parents=True)
    (root / "ab" / "photo.png").write_bytes(b"ours")
    (tmp_path / "secret.png").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.png", root / "ab" / "link.png")
    (root / "ab" / "notes.txt").write_text("not an image")
    files = MediaFiles(root)
    assert files.resolve("/media/ab/photo.png") == (root / "ab" / "photo.png").resolve()
    for value in ("/media/../secret.png", "/media/ab/../../secret.png", "/media//etc/passwd", "/media/ab/link.png",
                  str(tmp_path / "secret.png"), "/media/ab/notes.txt", "/media/ab/missing.png", "/media/",
                  "https://example.org/x.png", "/media/ab\\..\\..\\secret.png", None, 12):
        assert files.resolve(value) is None, value


def test_money_is_exact_decimal_text():
    assert money.decimal_text(1250, "USD") == "12.50"
    assert money.decimal_text(-5, "EUR") == "-0.05"
    assert money.decimal_text(300, "JPY") == "300"
    assert money.decimal_text(12345, "KWD") == "12.345"
    assert money.divide_half_up(5, 2) == 3 and money.divide_half_up(-5, 2) == -3 and money.divide_half_up(4, 3) == 1
    with pytest.raises(TypeError):
        money.decimal_text(12.5, "USD")


def test_payroll_rows_are_sorted_summed_and_written_the_same_every_time():
    people = {1: payroll.Person(1, "Ada", "ada@example.org"), 2: payroll.Person(2, "=cmd()", "bo@example.org")}
    money_lines = [payroll.MoneyLine(2, "USD", "earning", 150, 3), payroll.MoneyLine(1, "USD", "earning", 100, 2),
                   payroll.MoneyLine(1, "USD", "bonus", 10, 1), payroll.MoneyLine(1, "USD", "adjustment", -5, 1),
                   payroll.MoneyLine(1, "EUR", "top_up", 7, 1)]
    work = [payroll.WorkLine(1, "USD", 2, 1_800_000), payroll.WorkLine(2, "USD", 3, 0)]
    rows = payroll.payroll_rows(money_lines, work, people)
    assert [(r.currency, r.annotator_id, r.total) for r in rows] == [("EUR", 1, 7), ("USD", 1, 105), ("USD", 2, 150)]
    ada = rows[1]
    assert (ada.active_hours, ada.hourly_rate) == ("0.50", 210) and rows[2].hourly_rate is None
    assert payroll.totals(rows)["USD"] == {"annotators": 2, "entries": 7, "approved_micro_tasks": 5, "base_pay": 250,
                                           "bonuses": 10, "top_ups": 0, "adjustments": -5, "total": 255}
    first, second = io.StringIO(newline=""), io.StringIO(newline="")
    payroll.write_csv(rows, first)
    payroll.write_csv(list(reversed(payroll.payroll_rows(list(reversed(money_lines)), work, people)))[::-1], second)
    assert first.getvalue() == second.getvalue()
    lines = first.getvalue().split("\r\n")
    assert lines[0] == ",".join(payroll.CSV_COLUMNS)
    assert lines[2] == "1,Ada,ada@example.org,USD,2,0.50,1.00,0.10,0.00,-0.05,1.05,2.10"
    assert lines[3].startswith("2,'=cmd(),")  # a name is never run as a spreadsheet formula


def test_json_min_of_data_whose_keys_clash_with_controls_or_record_keys(tmp_path):
    tasks = [{"id": 4, "data": {"sentiment": "given", "annotator": "x", "text": "t"},
              "annotations": [{"id": 9, "completed_by": "ab12", "result": choice("Positive"), "created_at": "c",
                               "lead_time": 1.0}]},
             {"id": 5, "data": {}, "annotations": []}]
    ours = io.BytesIO()
    labelstudio.write_json_min(tasks, ours, CONTROLS)
    assert json.loads(ours.getvalue()) == json.loads(sdk_convert(tmp_path, tasks, "JSON_MIN"))
    assert json.loads(ours.getvalue())[0]["sentiment"] == "Positive"


def test_json_min_of_a_control_named_like_a_record_key(tmp_path):
    config = TEXT_CONFIG.replace('name="sentiment"', 'name="annotator"')
    result = [{**choice("Positive")[0], "from_name": "annotator"}]
    tasks = [{"id": 4, "data": {"text": "t"}, "annotations": [
        {"id": 9, "completed_by": "ab12", "result": result, "created_at": "c", "lead_time": 1.0}]}]
    ours = io.BytesIO()
    labelstudio.write_json_min(tasks, ours, {"annotator": "Choices"})
    records = json.loads(ours.getvalue())
    assert records == json.loads(sdk_convert(tmp_path, tasks, "JSON_MIN", config))
    assert records[0]["annotator"] == "ab12" and ours.getvalue().count(b'"annotator"') == 1


BOXES_AND_POLYGONS = """<View><Image name="image" value="$image"/>
<RectangleLabels name="box" toName="image"><Label value="Car"/><Label value="Person"/></RectangleLabels>
<PolygonLabels name="shape" toName="image"><Label value="Road"/></PolygonLabels></View>"""


def region(kind, label, value, width=640, height=480):
    name = {"rectanglelabels": "box", "polygonlabels": "shape"}[kind]
    labels = label if isinstance(label, list) else [label]
    sized = {"original_width": width, "original_height": height} if width else {}
    return {"from_name": name, "to_name": "image", "type": kind, **sized, "value": {**value, kind: labels}}


BOX = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 25.5, "rotation": 0}
TRIANGLE = {"points": [[0, 0], [50, 10], [40, 60.5]]}


def test_coco_written_as_a_stream_holds_what_label_studio_s_converter_writes(tmp_path):
    from exports import converted

    box = BOX
    tasks = [
        {"id": 1, "data": {"image": "/nowhere/1.png"}, "annotations": [{"id": 1, "result": [
            # Controls interleaved: the converter lists the regions of one control, then the next.
            region("rectanglelabels", "Car", box), region("polygonlabels", "Road", TRIANGLE),
            region("rectanglelabels", "Person", {**box, "rotation": 30})]}]},
        {"id": 2, "data": {"image": "/nowhere/2.jpg"}, "annotations": []},
        {"id": 3, "data": {"image": "/nowhere/3.png"}, "annotations": [{"id": 2, "result": [
            region("rectanglelabels", "Bus", box, 800, 600)]}]},  # a label the config does not list
    ]
    source = tmp_path / "tasks.json"
    source.write_text(json.dumps(tasks))
    Converter(config=BOXES_AND_POLYGONS, project_dir=None, download_resources=False).convert(
        str(source), str(tmp_path / "sdk"), "COCO", is_dir=False)
    theirs = json.loads((tmp_path / "sdk" / "result.json").read_text())

    archive = io.BytesIO()
    written = converted.write_converted("COCO", BOXES_AND_POLYGONS, iter(tasks), archive, tmp_path / "work", "image",
                                        None)
    ours = json.loads(zipfile.ZipFile(archive).read("result.json"))
    assert (written.items, written.annotations) == (3, 2)
    # The same images, categories and annotations; an image that is not ours is named as the item names
    # it (the converter names a local copy it tried to make).
    assert [{**i, "file_name": None} for i in ours["images"]] == [{**i, "file_name": None} for i in theirs["images"]]
    assert [i["file_name"] for i in ours["images"]] == ["/nowhere/1.png", "/nowhere/2.jpg", "/nowhere/3.png"]
    assert ours["categories"] == theirs["categories"] and ours["annotations"] == theirs["annotations"]
    assert [c["name"] for c in ours["categories"]] == ["Car", "Person", "Road", "Bus"]
    assert len(ours["annotations"]) == 4 and ours["info"]["contributor"] == "Label Studio"
    assert not (tmp_path / "work").exists()


def sdk_archive(tmp_path, tasks, fmt, media: MediaFiles, config=BOXES_AND_POLYGONS) -> dict[str, bytes]:
    """The files label-studio-sdk's converter writes for `tasks` given, as its input, the path of a
    link in images/ to each stored image of ours, and of an empty placeholder for any other value."""
    out, outside = tmp_path / f"sdk-{fmt}", tmp_path / f"outside-{fmt}"
    (out / "images").mkdir(parents=True)
    outside.mkdir()
    placed = []
    for task in tasks:
        value = task["data"].get("image")
        real = media.resolve(value)
        if real is not None:
            path = out / "images" / f"{task['id']}{real.suffix.lower()}"
            path.symlink_to(real)
        else:
            path = outside / f"{task['id']}{safe_suffix(value)}"
            path.touch()
        placed.append({**task, "data": {**task["data"], "image": str(path)}})
    source = tmp_path / f"{fmt}.json"
    source.write_text(json.dumps(placed))
    Converter(config=config, project_dir=None, download_resources=False).convert(str(source), str(out), fmt,
                                                                                 is_dir=False)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def boxed_tasks() -> list[dict]:
    def annotation(i, created, result, **more):
        return {"id": i, "completed_by": f"annotator{i}", "created_at": created, "result": result, **more}

    polygon = region("polygonlabels", "Road", TRIANGLE)
    return [
        # A stored image; boxes and a polygon of two controls, interleaved.
        {"id": 1, "data": {"image": "/media/ab/photo.png"}, "annotations": [annotation(1, "2026-01-01", [
            region("rectanglelabels", "Car", BOX), polygon, region("rectanglelabels", "Person", {**BOX, "rotation": 30})])]},
        {"id": 2, "data": {"image": "/nowhere/2.jpg"}, "annotations": []},
        # The oldest annotation with regions wins; a label the config does not list; two labels on one box.
        {"id": 3, "data": {"image": "https://example.org/3.png?size=big"}, "annotations": [
            annotation(2, "2026-01-03", [region("rectanglelabels", "Bus", BOX, 800, 600)]),
            annotation(3, "2026-01-02", [region("rectanglelabels", ["Person", "Car"], {**BOX, "x": 55.5}, 800, 600),
                                         polygon]),
            annotation(4, "2026-01-01", []),
            annotation(5, "2025-12-31", [region("rectanglelabels", "Car", BOX)], was_cancelled=True)]},
        # Every annotation cancelled; a path outside the media root.
        {"id": 4, "data": {"image": "/media/../secret.png"}, "annotations": [
            annotation(6, "2026-01-01", [region("rectanglelabels", "Car", BOX)], was_cancelled=True)]},
        # A stored image whose regions carry no size: no VOC file.
        {"id": 5, "data": {"image": "/media/ab/photo.jpg"}, "annotations": [
            annotation(7, "2026-01-01", [region("rectanglelabels", "Car", BOX, None)])]},
        {"id": 6, "data": {}, "annotations": [annotation(8, "2026-01-01", [region("rectanglelabels", "Car", BOX)])]},
    ]


@pytest.mark.parametrize("fmt", ["YOLO", "VOC"])
def test_yolo_and_voc_written_as_streams_hold_what_label_studio_s_converter_writes(tmp_path, fmt):
    from exports import converted
    from tests.exports.conftest import png

    (tmp_path / "media" / "ab").mkdir(parents=True)
    (tmp_path / "media" / "ab" / "photo.png").write_bytes(png(64, 48, 10))
    (tmp_path / "media" / "ab" / "photo.jpg").write_bytes(png(32, 24, 90))
    (tmp_path / "secret.png").write_bytes(b"secret")
    media = MediaFiles(tmp_path / "media")
    tasks = boxed_tasks()
    theirs = sdk_archive(tmp_path, tasks, fmt, media)

    target = io.BytesIO()
    written = converted.write_converted(fmt, BOXES_AND_POLYGONS, iter(tasks), target, tmp_path / "work", "image",
                                        media)
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        ours = {name: archive.read(name) for name in archive.namelist()}
    assert (written.items, written.annotations, written.images) == (6, 8, 2)
    assert not (tmp_path / "work").exists()
    assert sorted(ours) == sorted(theirs)
    assert {name: data for name, data in ours.items() if name != "notes.json"} == {
        name: data for name, data in theirs.items() if name != "notes.json"}
    assert ours["images/1.png"] == (tmp_path / "media" / "ab" / "photo.png").read_bytes()
    assert [name for name in ours if name.startswith("images/")] == ["images/1.png", "images/5.jpg"]
    if fmt == "YOLO":
        assert json.loads(ours["notes.json"]) == json.loads(theirs["notes.json"])
        assert sorted(name for name in ours if name.startswith("labels/")) == [
            f"labels/{i}.txt" for i in (1, 2, 3, 5, 6)]
        assert ours["labels/2.txt"] == b"" and ours["classes.txt"] == b"Car\nPerson\nRoad\nBus\n"
        lines = [line.split() for name, data in ours.items() if name.startswith("labels/")
                 for line in data.decode().splitlines()]
        assert len(lines) == 8 and all(0 <= float(n) <= 1 for line in lines for n in line[1:])
    else:
        assert sorted(name for name in ours if name.startswith("Annotations/")) == [
            "Annotations/1.xml", "Annotations/3.xml", "Annotations/6.xml"]
        assert b"<filename>3.png</filename>" in ours["Annotations/3.xml"]


def test_yolo_of_boxes_with_keypoints_holds_what_label_studio_s_converter_writes(tmp_path):
    from exports import converted

    config = """<View><Image name="image" value="$image"/>
<RectangleLabels name="box" toName="image"><Label value="Face"/><Label value="Hand"/></RectangleLabels>
<KeyPointLabels name="kp" toName="image"><Label value="eye"/><Label value="nose"/></KeyPointLabels></View>"""

    def part(region_id, kind, label, value, parent=None):
        return {"id": region_id, "parentID": parent, "from_name": "kp" if kind == "keypointlabels" else "box",
                "to_name": "image", "type": kind, "original_width": 640, "original_height": 480,
                "value": {**value, kind: [label]}}

    tasks = [{"id": 1, "data": {"image": "/x/1.png"}, "annotations": [{"id": 1, "result": [
        part("a", "rectanglelabels", "Face", {"x": 10, "y": 10, "width": 30, "height": 40}),
        part("b", "keypointlabels", "eye", {"x": 20, "y": 20}, "a"),
        part("c", "keypointlabels", "nose", {"x": 25, "y": 30}, "a"),
        part("d", "rectanglelabels", "Hand", {"x": 50, "y": 50, "width": 10, "height": 10})]}]},
        {"id": 2, "data": {"image": "/x/2.png"}, "annotations": []}]
    theirs = sdk_archive(tmp_path, tasks, "YOLO", MediaFiles(tmp_path / "media"), config)
    target = io.BytesIO()
    converted.write_converted("YOLO", config, iter(tasks), target, tmp_path / "work", "image", None)
    with zipfile.ZipFile(target) as archive:
        ours = {name: archive.read(name) for name in archive.namelist()}
    assert ours == theirs and sorted(ours) == ["classes.txt", "labels/1.txt", "labels/2.txt", "notes.json"]
    assert ours["labels/1.txt"].count(b"\n") == 1 and json.loads(ours["notes.json"])["categories"][0]["keypoints"]


def test_an_archive_of_many_or_large_members_has_zip64_records(tmp_path, monkeypatch):
    from exports import converted

    image = tmp_path / "image.png"
    image.write_bytes(os.urandom(3000))
    members = {f"labels/{i}.txt": b"0 0.5 0.5 0.25 0.125\n" * i for i in range(6)}

    def write() -> bytes:
        target = io.BytesIO()
        archive = converted._Archive(target, tmp_path / "central.tmp")
        for name, data in members.items():
            archive.add(name, data)
        archive.add_file("images/1.png", image, compress=False)
        with archive.member("result.json") as out:
            for _ in range(100):
                out.write(b'{"images": []}\n')
        archive.add("naïve.txt", b"")
        archive.close()
        assert not (tmp_path / "central.tmp").exists()
        with zipfile.ZipFile(target) as read:
            assert read.testzip() is None
            assert {name: read.read(name) for name in members} == members
            assert read.read("images/1.png") == image.read_bytes()
            assert read.read("result.json") == b'{"images": []}\n' * 100 and read.read("naïve.txt") == b""
            assert read.namelist() == [*members, "images/1.png", "result.json", "naïve.txt"]
        return target.getvalue()

    assert b"PK\x06\x06" not in write()
    # Limits of a few bytes and members, so that sizes, offsets and the count need ZIP64 fields.
    monkeypatch.setattr(converted, "_LIMIT", 100)
    monkeypatch.setattr(converted, "_COUNT_LIMIT", 3)
    assert b"PK\x06\x06" in write()
