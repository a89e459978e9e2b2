"""Reading uploaded item files row by row, with bad rows reported by line."""

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate import readers
from annotate.readers import (
    Row,
    RowError,
    TooManyRowErrors,
    UnsupportedFormat,
    detect_format,
    read_csv,
    read_json,
    read_jsonl,
    read_rows,
    read_tsv,
    read_txt,
    valid_rows,
)

DATA = Path(__file__).resolve().parent.parent / "data"


def b(text: str) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(text.encode("utf-8")))


def outcome(items):
    """Rows as (line, data) and errors as 'ERR line: message', raised ones as 'RAISED ...'."""
    out = []
    try:
        for item in items:
            if isinstance(item, Row):
                out.append((item.line, item.data))
            else:
                out.append(f"ERR {item.line}: {item.message}")
    except RowError as exc:
        out.append(f"RAISED {exc.line}: {exc.message}")
    return out


# --- formats ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt",
    [("a.json", "json"), ("a.JSONL", "jsonl"), ("x/y.csv", "csv"), ("a.tsv", "tsv"), ("a.txt", "txt"),
     ("a.jpg", "image"), ("a.JPEG", "image"), ("a.png", "image"), ("a.webp", "image"), ("a.zip", "zip")],
)
def test_formats_are_known_by_extension(name, fmt):
    assert detect_format(name) == fmt


def test_an_unsupported_extension_is_named_with_the_list_we_take():
    with pytest.raises(UnsupportedFormat) as info:
        detect_format("report.docx")
    assert str(info.value) == (
        'report.docx: extension ".docx" is not a format we take; '
        "we take .json, .jsonl, .csv, .tsv, .txt, .jpg, .jpeg, .png, .webp, .zip"
    )
    assert info.value.ext == ".docx"
    assert ".jsonl" in info.value.accepted


def test_a_file_without_extension_is_unsupported():
    with pytest.raises(UnsupportedFormat, match="^README: no extension is not a format we take"):
        detect_format("README")


def test_images_are_not_rows():
    with pytest.raises(UnsupportedFormat):
        read_rows(b(""), "photo.jpg")


# --- JSONL --------------------------------------------------------------------


def test_jsonl_happy_path_reads_tasks_and_flat_dicts():
    with open(DATA / "tasks.jsonl", "rb") as fp:
        rows = list(read_rows(fp, "tasks.jsonl"))
    assert [(r.line, r.data) for r in rows] == [
        (1, {"text": "Great service, fast delivery."}),
        (2, {"text": "The parcel arrived broken."}),
        (4, {"text": "It works.", "source": "email"}),
    ]
    assert rows[0].predictions[0]["result"][0]["value"] == {"choices": ["Positive"]}
    assert rows[1].predictions is None and rows[1].annotations is None


def test_jsonl_malformed_rows_are_yielded_with_their_line_and_reading_goes_on():
    text = (
        '{"text": "a"}\n'
        "\n"
        '{"text": \n'
        "[1, 2]\n"
        '{"data": "x"}\n'
        '{"data": {"text": "b"}, "predictions": {"result": []}}\n'
        '{"data": {"text": "c"}, "annotations": [{"id": 1}]}\n'
        '{"text": "d"} trailing\n'
        '  {"text": "e"}  \r\n'
    )
    assert outcome(read_jsonl(b(text) , "t.jsonl")) == [
        (1, {"text": "a"}),
        "ERR 3: not valid JSON: Expecting value at column 11",
        "ERR 4: a task must be a JSON object, got a list",
        'ERR 5: "data" must be an object, got a string',
        'ERR 6: "predictions" must be a list, got an object',
        'ERR 7: "annotations[0]" has no "result" list',
        "ERR 8: not valid JSON: Extra data at column 15",
        (9, {"text": "e"}),
    ]


def test_jsonl_bytes_that_are_not_utf8_spoil_only_their_line():
    raw = b'{"text": "a"}\n{"text": "\xff"}\n{"text": "c"}\n'
    assert outcome(read_jsonl(io.BytesIO(raw))) == [
        (1, {"text": "a"}),
        "ERR 2: the line is not UTF-8 text (byte 11)",
        (3, {"text": "c"}),
    ]


def test_jsonl_takes_what_the_standard_library_takes_beyond_the_fast_parser():
    # orjson parses the usual line; what it refuses is read the slow way, as before.
    raw = (b'{"text": "big", "n": 123456789012345678901234567890}\n'
           b'{"text": "nan", "score": NaN}\n'
           b'{"text": "lone \\ud800 surrogate"}\n'
           b'{"text": "\xc3\xa9t\xc3\xa9 \\u00e9"}\n')
    rows = outcome(read_jsonl(io.BytesIO(raw)))
    assert rows[0] == (1, {"text": "big", "n": 123456789012345678901234567890})
    assert rows[1][0] == 2 and rows[1][1]["score"] != rows[1][1]["score"]  # NaN
    assert rows[2] == (3, {"text": "lone \ud800 surrogate"})
    assert rows[3] == (4, {"text": "\u00e9t\u00e9 \u00e9"})


@pytest.mark.parametrize("number", [-(2**63) - 1, 2**64, -(10**19), 2**63 - 1, -(2**63), 2**64 - 1])
def test_jsonl_keeps_integers_beyond_64_bits_exact(number):
    # orjson would read the first three as floats; -(2**63) - 1 has only 19 digits.
    raw = b'{"text": "n", "n": %d, "m": 12345678}\n' % number
    assert outcome(read_jsonl(io.BytesIO(raw))) == [(1, {"text": "n", "n": number, "m": 12345678})]
    assert type(outcome(read_jsonl(io.BytesIO(raw)))[0][1]["n"]) is int


def test_jsonl_a_byte_order_mark_is_ignored():
    assert outcome(read_jsonl(io.BytesIO(b'\xef\xbb\xbf{"text": "a"}\n'))) == [(1, {"text": "a"})]


def test_jsonl_an_overlong_line_is_an_error_and_is_skipped_whole():
    raw = b'{"text": "' + b"x" * 100 + b'"}\n{"text": "b"}\n'
    assert outcome(read_jsonl(io.BytesIO(raw), max_line_bytes=50)) == [
        "ERR 1: the line is longer than 50 bytes",
        (2, {"text": "b"}),
    ]


def test_jsonl_reads_one_line_at_a_time():
    raw = b"".join(b'{"text": "item %d"}\n' % i for i in range(10_000))
    fp = io.BufferedReader(io.BytesIO(raw), buffer_size=4096)
    first = next(read_jsonl(fp))
    assert first.data == {"text": "item 0"}
    assert fp.raw.tell() <= 4096 < len(raw)


def test_row_errors_name_the_file():
    err = next(read_jsonl(b("nope\n"), "upload.jsonl"))
    assert str(err) == "upload.jsonl, line 1: not valid JSON: Expecting value at column 1"


def test_too_many_rows_stops_the_file():
    assert outcome(read_jsonl(b('{"a": 1}\n{"a": 2}\n{"a": 3}\n'), max_rows=2)) == [
        (1, {"a": 1}), (2, {"a": 2}), "RAISED 3: the file has more than 2 items, the most one upload may have",
    ]


# --- JSON ---------------------------------------------------------------------


def test_json_happy_path_gives_the_line_each_task_starts_on():
    with open(DATA / "tasks.json", "rb") as fp:
        rows = list(read_rows(fp, "tasks.json"))
    assert [(r.line, r.data) for r in rows] == [
        (2, {"text": "Great service, fast delivery."}),
        (3, {"text": "The parcel arrived broken."}),
        (4, {"text": "It works."}),
    ]
    assert rows[0].predictions[0]["model_version"] == "v1"
    assert rows[2].annotations == [{"result": []}]


def test_json_indented_tasks_are_numbered_by_their_first_line():
    text = json.dumps([{"data": {"text": str(i)}} for i in range(3)], indent=2)
    assert [r.line for r in read_json(b(text))] == [2, 7, 12]


def test_json_blank_lines_before_the_list_count():
    assert outcome(read_json(b('\n\n[\n{"text": "a"}\n]'))) == [(4, {"text": "a"})]


def test_json_on_one_line_is_all_line_one():
    text = json.dumps([{"text": "a"}, {"text": "b"}])
    assert outcome(read_json(b(text))) == [(1, {"text": "a"}), (1, {"text": "b"})]


def test_json_bad_tasks_are_yielded_with_line_and_item_number():
    text = '[\n{"text": "a"},\n5,\n{"data": [1]},\n{"text": "e"}\n]\n'
    assert outcome(read_json(b(text))) == [
        (2, {"text": "a"}),
        "ERR 3: item 2: a task must be a JSON object, got a number",
        'ERR 4: item 3: "data" must be an object, got a list',
        (5, {"text": "e"}),
    ]


def test_json_a_syntax_error_stops_the_file_at_its_line():
    text = '[\n{"text": "a"},\n{"text": "b",,},\n{"text": "c"}\n]'
    assert outcome(read_json(b(text), "t.json")) == [
        (2, {"text": "a"}),
        "RAISED 3: not valid JSON: parse error: invalid object key (must be a string), near '{\"text\": \"b\",,},'",
    ]


def test_json_that_ends_too_soon_stops_the_file():
    assert outcome(read_json(b('[\n{"text": "a"},\n{"text": "b"'))) == [
        (2, {"text": "a"}),
        "RAISED 3: the JSON ends before the list of tasks is closed",
    ]


def test_json_one_task_object_is_one_row():
    assert outcome(read_json(b('\n{"data": {"text": "a"}}\n'))) == [(2, {"text": "a"})]


@pytest.mark.parametrize(
    "text, message",
    [
        ('\n"just text"', "RAISED 2: a JSON upload must be a list of tasks [...] or one task {...}; it starts with '\"'"),
        ("  \n", "RAISED 1: the file is empty: a JSON upload must be a list of tasks [...]"),
    ],
)
def test_json_that_is_not_a_list_of_tasks_is_refused(text, message):
    assert outcome(read_json(b(text))) == [message]


# ijson's C parser (yajl) refuses integers beyond 64 bits: a known limit.
task_strategy = st.fixed_dictionaries(
    {"text": st.text(max_size=30)},
    optional={"n": st.integers(-(2**63) + 1, 2**63 - 1), "tags": st.lists(st.text(max_size=5), max_size=3)},
)


@settings(max_examples=100, deadline=None)
@given(
    tasks=st.lists(st.tuples(task_strategy, st.booleans(), st.sampled_from([None, None, 1, 2])), min_size=1,
                   max_size=8),
    separators=st.lists(st.sampled_from([",\n", "\n,", ", ", ",\n\n"]), min_size=7, max_size=7),
    piece=st.sampled_from([3, 7, 64, 1 << 20]),
    ascii_only=st.booleans(),
    blank_lines=st.integers(0, 2),
)
def test_json_line_numbers_match_where_each_task_starts(tasks, separators, piece, ascii_only, blank_lines):
    """Whatever the layout (one per line with the comma after or before it,
    several on a line, indented, wrapped in a task, one layout turning into
    another) and however the file is cut into pieces, a row's line is its
    task's line."""
    document = "\n" * blank_lines + "[\n"
    expected = []
    for data, wrapped, indent in tasks:
        element = {"data": data} if wrapped else data
        if "data" in data:  # a flat dict may not use the key "data"
            continue
        if expected:
            document += separators[len(expected) - 1]
        expected.append((document.count("\n") + 1, data))
        document += json.dumps(element, indent=indent, ensure_ascii=ascii_only)
    document += "\n]\n"
    old = readers._JSON_PIECE
    readers._JSON_PIECE = piece
    try:
        got = outcome(read_json(b(document)))
    finally:
        readers._JSON_PIECE = old
    assert got == expected


@pytest.mark.parametrize(
    "text, after",
    [
        ('[\n{"text": "a"}\n{"text": "b"}\n]', ["RAISED 3: not valid JSON: a comma or the closing ] must follow a task"]),
        ('[\n{"text": "a"},\n]', ["RAISED 3: not valid JSON: a comma must be followed by a task, not by ]"]),
        ('[\n{"text": "a"},\n{"text": "b"}\n]\nxx',
         [(3, {"text": "b"}), "RAISED 5: not valid JSON: parse error: trailing garbage, near 'xx'"]),
        ('[\n{"text": "a"}\n', ["RAISED 3: the JSON ends before the list of tasks is closed"]),
        ('[\n{"text": "a"},\n{"text": "b", "n": 1e999999}\n]',
         ["RAISED 3: not valid JSON: parse error: numeric (floating point) overflow, near '{\"text\": \"b\", \"n\": 1e999999}'"]),
    ],
)
def test_json_a_list_that_goes_wrong_after_a_task_is_refused_at_its_line(text, after):
    assert outcome(read_json(b(text))) == [(2, {"text": "a"}), *after]


# --- CSV / TSV ----------------------------------------------------------------


def test_csv_happy_path_with_header_as_line_one():
    with open(DATA / "items.csv", "rb") as fp:
        rows = list(read_rows(fp, "items.csv"))
    assert [(r.line, r.data) for r in rows] == [
        (2, {"text": "Great service, fast delivery.", "source": "web"}),
        (3, {"text": "The parcel arrived broken.", "source": "email"}),
        (4, {"text": 'She said "hi"\nand left.', "source": "chat"}),
    ]


def test_csv_rows_with_the_wrong_number_of_fields_are_errors():
    text = 'text,label\nok,pos\n\nonly one\n"two\nlines",neg\na,b,c\nlast,neg\n'
    assert outcome(read_csv(b(text))) == [
        (2, {"text": "ok", "label": "pos"}),
        "ERR 4: the row has 1 fields, the header has 2",
        (5, {"text": "two\nlines", "label": "neg"}),
        "ERR 7: the row has 3 fields, the header has 2",
        (8, {"text": "last", "label": "neg"}),
    ]


def test_csv_a_row_that_is_not_utf8_is_an_error_the_others_are_read():
    raw = "\ufefftext,label\r\nok,pos\r\nbad \xff,neg\r\nfine,neg\r\n".encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    assert outcome(read_csv(io.BytesIO(raw))) == [
        (2, {"text": "ok", "label": "pos"}),
        "ERR 3: the line is not UTF-8 text (byte 5)",
        (4, {"text": "fine", "label": "neg"}),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "RAISED 1: the file is empty: the first line must name the columns"),
        ("text,,label\n", "RAISED 1: column 2 of the header has no name"),
        ("text,label,text\n", 'RAISED 1: the header names "text" twice (columns 1 and 3)'),
    ],
)
def test_csv_a_bad_header_stops_the_file(text, message):
    assert outcome(read_csv(b(text))) == [message]


def test_tsv_happy_path_and_wrong_field_count():
    with open(DATA / "items.tsv", "rb") as fp:
        rows = list(read_rows(fp, "items.tsv"))
    assert [(r.line, r.data["source"]) for r in rows] == [(2, "web"), (3, "email")]
    assert outcome(read_tsv(b("a\tb\n1\t2\n3\n4\t5\t6\n"))) == [
        (2, {"a": "1", "b": "2"}),
        "ERR 3: the row has 1 fields, the header has 2",
        "ERR 4: the row has 3 fields, the header has 2",
    ]


def test_csv_leaves_the_callers_file_open():
    fp = b("a\n1\n")
    list(read_csv(fp))
    assert not fp.closed


# --- TXT ----------------------------------------------------------------------


def test_txt_gives_one_item_per_non_blank_line():
    with open(DATA / "items.txt", "rb") as fp:
        rows = list(read_rows(fp, "items.txt", text_key="body"))
    assert [(r.line, r.data) for r in rows] == [
        (1, {"body": "Great service, fast delivery."}),
        (3, {"body": "The parcel arrived broken."}),
        (4, {"body": "It works."}),
    ]


def test_txt_a_line_that_is_not_utf8_is_an_error():
    assert outcome(read_txt(io.BytesIO(b"\xef\xbb\xbfone\r\n  \n\xfftwo\nthree"))) == [
        (1, {"text": "one"}),
        "ERR 3: the line is not UTF-8 text (byte 1)",
        (4, {"text": "three"}),
    ]


# --- stop or collect ----------------------------------------------------------

BAD_JSONL = '{"a": 1}\nx\n{"a": 3}\ny\nz\n{"a": 6}\n'


def test_valid_rows_stops_at_the_first_bad_row_by_default():
    rows = valid_rows(read_jsonl(b(BAD_JSONL)))
    assert next(rows).line == 1
    with pytest.raises(RowError) as info:
        next(rows)
    assert str(info.value) == "line 2: not valid JSON: Expecting value at column 1"


def test_valid_rows_collects_up_to_n_errors_and_keeps_going():
    errors = []
    rows = list(valid_rows(read_jsonl(b(BAD_JSONL)), errors, max_errors=3))
    assert [r.line for r in rows] == [1, 3, 6]
    assert [e.line for e in errors] == [2, 4, 5]


def test_valid_rows_gives_up_after_n_errors():
    errors = []
    with pytest.raises(TooManyRowErrors) as info:
        list(valid_rows(read_jsonl(b(BAD_JSONL)), errors, max_errors=2))
    assert [e.line for e in info.value.errors] == [2, 4, 5]
    assert str(info.value) == (
        "stopped after 3 bad rows (lines 2, 4, 5); first: line 2: not valid JSON: Expecting value at column 1"
    )
