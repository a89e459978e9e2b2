"""Streaming row readers for uploaded item files: Label Studio JSON, JSONL,
CSV, TSV and plain text.

Each reader takes a binary file object and yields, one at a time, a `Row` for
every item and a `RowError` for every malformed row, so a caller decides
whether one bad row stops the upload or is reported and skipped
(`valid_rows` does either). A file that cannot be read past some point (JSON
syntax error, bad header, not UTF-8 text in a CSV, too many rows) makes the
reader *raise* a `RowError` instead: nothing after it can be trusted.

Line numbers are 1-based physical lines of the file. For CSV/TSV the header is
line 1 and a row is numbered by the line it starts on. For JSON (a list of
tasks streamed with ijson, fed line by line) a row's line is the line where
its task starts, for the usual layouts (one task per line, or indented); the
messages of RowErrors also give the task's position in the list ("item 17"),
which is what locates a task in a minified, one-line file.

Pure module: no ORM, no Flask; memory use is one line or one task at a time.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, NamedTuple

import ijson
import orjson

__all__ = [
    "FORMATS",
    "ReadError",
    "Row",
    "RowError",
    "TooManyRowErrors",
    "UnsupportedFormat",
    "detect_format",
    "read_csv",
    "read_json",
    "read_jsonl",
    "read_rows",
    "read_tsv",
    "read_txt",
    "valid_rows",
]

# Extension -> format. "image" and "zip" are stored by annotate.media, the
# rest are read here.
FORMATS: dict[str, str] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
    ".jpg": "image",
    ".jpeg": "image",
    ".png": "image",
    ".webp": "image",
    ".zip": "zip",
}
ROW_FORMATS = ("json", "jsonl", "csv", "tsv", "txt")

# One line (or one piece of a minified JSON file) is read at most this long at
# a time, so a file without newlines cannot make us hold it whole.
MAX_LINE_BYTES = 16 * 1024 * 1024
_JSON_PIECE = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)
_NINETEEN_DIGITS = re.compile(rb"[0-9]{19}").search


class Row(NamedTuple):
    """One item read from an upload: its line, data and optional results."""

    line: int
    data: dict
    predictions: list | None = None
    annotations: list | None = None


# A NamedTuple's own constructor is a Python function; the bulk readers build
# their rows with the tuple's, which takes a fifth of the time.
_new_tuple = tuple.__new__


def _may_exceed_64_bits(raw: bytes) -> bool:
    """Whether a JSON line may hold an integer orjson cannot keep exact: one
    of 19 digits or more (-9223372036854775809 already has only 19). Counting
    the digits first skips the search on almost every line."""
    return len(raw.translate(None, _NOT_DIGITS)) >= 19 and _NINETEEN_DIGITS(raw) is not None


class ReadError(ValueError):
    """Base of the errors an uploaded file can cause."""


class UnsupportedFormat(ReadError):
    """A file whose extension we do not take."""

    def __init__(self, filename: str, ext: str):
        accepted = ", ".join(FORMATS)
        what = f'extension "{ext}"' if ext else "no extension"
        super().__init__(f"{filename}: {what} is not a format we take; we take {accepted}")
        self.filename = filename
        self.ext = ext
        self.accepted = tuple(FORMATS)


class RowError(ReadError):
    """A malformed row (yielded) or an unreadable file from this line (raised)."""

    def __init__(self, line: int, message: str, filename: str | None = None):
        where = f"{filename}, line {line}" if filename else f"line {line}"
        super().__init__(f"{where}: {message}")
        self.line = line
        self.message = message
        self.filename = filename


class TooManyRowErrors(ReadError):
    """More bad rows than the caller accepts; `errors` holds them all."""

    def __init__(self, errors: list[RowError]):
        lines = ", ".join(str(e.line) for e in errors[:10])
        more = ", ..." if len(errors) > 10 else ""
        super().__init__(f"stopped after {len(errors)} bad rows (lines {lines}{more}); first: {errors[0]}")
        self.errors = errors


def detect_format(filename: str) -> str:
    """The format of an upload by its extension: json, jsonl, csv, tsv, txt,
    image or zip. Raises `UnsupportedFormat` naming the extension."""
    ext = os.path.splitext(filename or "")[1].lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise UnsupportedFormat(filename, ext)
    return fmt


def read_rows(
    fp: IO[bytes],
    filename: str,
    *,
    text_key: str = "text",
    max_rows: int | None = None,
) -> Iterator[Row | RowError]:
    """Read an upload of any row format, chosen by `detect_format(filename)`.

    `text_key` is the data key a .txt line goes into. Images and ZIP files
    are not rows: they raise `UnsupportedFormat` here (see annotate.media).
    """
    fmt = detect_format(filename)
    if fmt == "json":
        return read_json(fp, filename, max_rows=max_rows)
    if fmt == "jsonl":
        return read_jsonl(fp, filename, max_rows=max_rows)
    if fmt == "csv":
        return read_csv(fp, filename, max_rows=max_rows)
    if fmt == "tsv":
        return read_tsv(fp, filename, max_rows=max_rows)
    if fmt == "txt":
        return read_txt(fp, filename, text_key=text_key, max_rows=max_rows)
    raise UnsupportedFormat(filename, os.path.splitext(filename)[1].lower())


def valid_rows(
    items: Iterable[Row | RowError],
    errors: list[RowError] | None = None,
    max_errors: int = 0,
) -> Iterator[Row]:
    """Yield the good rows of a reader, stopping or collecting on bad ones.

    With `max_errors=0` the first bad row is raised as its `RowError`.
    Otherwise each bad row is appended to `errors` and reading goes on; one
    more than `max_errors` raises `TooManyRowErrors`. Errors the reader
    raises itself (unreadable file) pass through either way.
    """
    if errors is None:
        errors = []
    for item in items:
        if type(item) is Row:
            yield item
            continue
        if max_errors <= 0:
            raise item
        errors.append(item)
        if len(errors) > max_errors:
            raise TooManyRowErrors(errors)


# --- task shape (JSON and JSONL) -------------------------------------------

_MISSING = object()


def _task(obj: Any) -> tuple[dict, list | None, list | None] | str:
    """Split a task into (data, predictions, annotations), or say what is wrong.

    As Label Studio does, a dict with "data" is a task and any other dict
    is the data itself.
    """
    if type(obj) is not dict:
        return f"a task must be a JSON object, got {_json_type(obj)}"
    data = obj.get("data", _MISSING)
    if data is _MISSING:
        return obj, None, None
    if type(data) is not dict:
        return f'"data" must be an object, got {_json_type(data)}'
    predictions = obj.get("predictions")
    annotations = obj.get("annotations")
    for key, results in (("predictions", predictions), ("annotations", annotations)):
        if results is None:
            continue
        if type(results) is not list:
            return f'"{key}" must be a list, got {_json_type(results)}'
        for n, r in enumerate(results):
            if type(r) is not dict:
                return f'"{key}[{n}]" must be an object, got {_json_type(r)}'
            if type(r.get("result")) is not list:
                return f'"{key}[{n}]" has no "result" list'
    return data, predictions, annotations


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _too_many(line: int, max_rows: int, filename: str | None) -> RowError:
    return RowError(line, f"the file has more than {max_rows} items, the most one upload may have", filename)


def _skip_rest_of_line(readline, first: bytes) -> None:
    piece = first
    while piece and not piece.endswith(b"\n"):
        piece = readline(_JSON_PIECE)


# --- JSONL -------------------------------------------------------------------


def read_jsonl(
    fp: IO[bytes],
    filename: str | None = None,
    *,
    max_rows: int | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Row | RowError]:
    """JSON Lines: one task per line, a task or a flat data dict; blank lines
    are skipped. This is the bulk path: one decode and one C-level JSON scan
    per line, little else."""
    # orjson parses the line's bytes (checking UTF-8 as it goes) in a third
    # of the time the standard library takes. What it refuses goes the slow
    # way, which takes what the standard library takes (NaN, a BOM, blank
    # lines) and puts the rest in words. orjson reads an integer over 64 bits
    # as a float, silently: a line that may hold one goes the slow way.
    fast_loads = orjson.loads
    long_number = _may_exceed_64_bits
    new_row = _new_tuple
    readline = fp.readline
    cap = max_line_bytes + 1
    line = 0
    count = 0
    limit = max_rows if max_rows is not None else -1
    while True:
        raw = readline(cap)
        if not raw:
            return
        line += 1
        if len(raw) == cap and raw[-1:] != b"\n":
            _skip_rest_of_line(readline, raw)
            yield RowError(line, f"the line is longer than {max_line_bytes} bytes", filename)
            continue
        try:
            if long_number(raw):
                raise ValueError("may hold an integer over 64 bits")
            obj = fast_loads(raw)
        except ValueError:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RowError(line, f"the line is not UTF-8 text (byte {exc.start + 1})", filename)
                continue
            if line == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if not text or text.isspace():
                continue  # blank line
            try:
                obj = json.loads(text)  # errors get words
            except ValueError as exc:
                column = getattr(exc, "pos", 0) + 1
                yield RowError(line, f"not valid JSON: {getattr(exc, 'msg', exc)} at column {column}", filename)
                continue
        # Inline fast path for the common shapes; _task covers the rest.
        if type(obj) is dict and "data" not in obj:
            row = new_row(Row, (line, obj, None, None))
        else:
            parts = _task(obj)
            if type(parts) is str:
                yield RowError(line, parts, filename)
                continue
            row = Row(line, *parts)
        count += 1
        if count == limit + 1 and limit >= 0:
            raise _too_many(line, limit, filename)
        yield row


# --- JSON (a list of tasks) -------------------------------------------------


def _pieces(fp: IO[bytes]) -> Iterator[bytes]:
    # Whole lines, or slices of a long line, so ijson is fed line by line and
    # we know on which line each task starts and ends.
    readline = fp.readline
    while True:
        piece = readline(_JSON_PIECE)
        if not piece:
            return
        yield piece


def _yajl_message(exc: Exception) -> str:
    lines = [s for s in str(exc).splitlines() if s.strip()]
    if not lines:
        return "not valid JSON"
    text = lines[0].rstrip(".")
    if len(lines) > 1 and "(right here)" not in lines[1]:
        text += f", near {lines[1].strip()[:60]!r}"
    return text


def read_json(
    fp: IO[bytes],
    filename: str | None = None,
    *,
    max_rows: int | None = None,
) -> Iterator[Row | RowError]:
    """Label Studio JSON: a top-level list of tasks, one task in memory at a
    time. A file holding one task object, as Label Studio also takes, gives
    one row."""
    pieces = _pieces(fp)
    line = 1
    head: list[bytes] = []
    first = b""
    # Find the first character that is not whitespace: [ or {.
    for piece in pieces:
        if not head and piece.startswith(_BOM):
            piece = piece[3:]
        head.append(piece)
        stripped = piece.strip()
        if stripped:
            first = stripped[:1]
            break
        if piece.endswith(b"\n"):
            line += 1
    if not first:
        raise RowError(1, "the file is empty: a JSON upload must be a list of tasks [...]", filename)
    if first == b"{":
        yield from _read_one_task(head, fp, line, filename)
        return
    if first != b"[":
        raise RowError(
            line,
            "a JSON upload must be a list of tasks [...] or one task {...}; "
            f"it starts with {first.decode('latin-1')!r}",
            filename,
        )
    yield from _TaskList(filename, max_rows).read(_chain(head, pieces))


# What the list of tasks expects next, while it is read a line at a time.
_OPEN, _TASK_OR_END, _TASK, _COMMA_OR_END = range(4)


class _TaskList:
    """The tasks of a JSON list, numbered by line and by position.

    Tools that write many tasks mostly write one to a line, with a comma
    before or after it. Such a line is parsed whole with orjson, five times
    faster than ijson. From the first line that is not laid out so (a task
    over several lines, or more than one task on a line, or a line orjson
    refuses) to the end of the file, ijson streams the rest, and gives the
    same tasks and the same errors as if it had read the file from its start.
    """

    def __init__(self, filename: str | None, max_rows: int | None):
        self.filename = filename
        self.max_rows = max_rows
        self.index = 0  # tasks read, for "item N"
        self.count = 0  # rows yielded, for max_rows

    def row(self, obj: Any, line: int) -> Row | RowError:
        self.index += 1
        parts = _task(obj)
        if type(parts) is str:
            return RowError(line, f"item {self.index}: {parts}", self.filename)
        self.count += 1
        if self.max_rows is not None and self.count > self.max_rows:
            raise _too_many(line, self.max_rows, self.filename)
        return _new_tuple(Row, (line, *parts))

    def read(self, pieces: Iterator[bytes]) -> Iterator[Row | RowError]:
        line = 1
        expect = _OPEN
        loads, long_number = orjson.loads, _may_exceed_64_bits
        for piece in pieces:
            content = piece.strip()
            while content:
                if expect == _OPEN:  # the first content of all is the "["
                    content, expect = content[1:].lstrip(), _TASK_OR_END
                elif expect == _COMMA_OR_END and content[:1] == b",":
                    content, expect = content[1:].lstrip(), _TASK
                elif expect == _COMMA_OR_END:
                    break
                else:
                    comma = content[-1:] == b","
                    task = content[:-1].rstrip() if comma else content
                    if task[:1] != b"{" or task[-1:] != b"}" or long_number(task):
                        break
                    try:
                        obj = loads(task)
                    except ValueError:
                        break
                    yield self.row(obj, line)
                    content, expect = b"", _TASK if comma else _COMMA_OR_END
            if content:
                self.check_resumable(expect, content, line)
                # ijson starts a list of its own where this one left off.
                rest = content + b"\n" if piece.endswith(b"\n") else content
                yield from self.stream(_chain([b"[", rest], pieces), line)
                return
            if piece.endswith(b"\n"):
                line += 1
        raise RowError(line, "the JSON ends before the list of tasks is closed", self.filename)

    def check_resumable(self, expect: int, rest: bytes, line: int) -> None:
        # What a new list could not tell: that a task, or a comma, came before.
        if expect == _COMMA_OR_END and rest[:1] != b"]":
            raise RowError(line, "not valid JSON: a comma or the closing ] must follow a task", self.filename)
        if expect == _TASK and rest[:1] == b"]":
            raise RowError(line, "not valid JSON: a comma must be followed by a task, not by ]", self.filename)

    def stream(self, pieces: Iterator[bytes], line: int) -> Iterator[Row | RowError]:
        """The rest of the list, from its (re)opening "[", streamed with ijson
        and fed line by line, so that each task gets the line it starts on."""
        out = ijson.sendable_list()
        coro = ijson.items_coro(out, "item", use_float=True)
        start: int | None = None  # line where the task being parsed began
        opened = False

        def rows(at: int) -> Iterator[Row | RowError]:
            for k, obj in enumerate(out):
                # The first finished task may have started lines ago; the others
                # finished in this piece started in it too.
                yield self.row(obj, start if (k == 0 and start is not None) else at)
            del out[:]

        for piece in pieces:
            if start is None:
                content = piece.strip()
                if not opened and content.startswith(b"["):
                    opened = True
                    content = content[1:].lstrip()
                content = content.lstrip(b", \t\r\n")
                if content and not content.startswith(b"]"):
                    start = line
            try:
                coro.send(piece)
            except ijson.JSONError as exc:
                yield from rows(line)
                raise RowError(line, f"not valid JSON: {_yajl_message(exc)}", self.filename) from None
            if out:
                yield from rows(line)
                # Does a new task begin after the last one that finished here?
                # Only if this piece does not end at a task's end or a comma.
                tail = piece.rstrip()
                start = line if tail and tail[-1:] not in b",}]" else None
            if piece.endswith(b"\n"):
                line += 1
        try:
            coro.close()
        except ijson.JSONError:
            yield from rows(line)
            raise RowError(line if line > 1 else 1, "the JSON ends before the list of tasks is closed",
                           self.filename) from None
        yield from rows(line)


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


def _read_one_task(head: list[bytes], fp: IO[bytes], line: int, filename: str | None) -> Iterator[Row | RowError]:
    # A single task object is small; read it whole.
    raw = b"".join(head) + fp.read()
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise RowError(line, f"the file is not UTF-8 text (byte {exc.start + 1})", filename) from None
    except ValueError as exc:
        raise RowError(exc.lineno, f"not valid JSON: {exc.msg} at column {exc.colno}", filename) from None
    parts = _task(obj)
    if type(parts) is str:
        yield RowError(line, parts, filename)
    else:
        yield Row(line, *parts)


# --- CSV / TSV ---------------------------------------------------------------


def read_csv(
    fp: IO[bytes],
    filename: str | None = None,
    *,
    delimiter: str = ",",
    max_rows: int | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Row | RowError]:
    """CSV: the header row (line 1) names the data keys; every other row must
    have as many fields. Values stay strings; blank lines are skipped."""
    bad: dict[int, str] = {}  # line -> why it could not be decoded
    reader = csv.reader(_text_lines(fp, bad, max_line_bytes), delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise RowError(1, f"cannot read the header: {exc}", filename) from None
    if bad:
        line = min(bad)
        raise RowError(line, f"cannot read the header: {bad[line]}", filename)
    if not header:
        raise RowError(1, "the file is empty: the first line must name the columns", filename)
    _check_header(header, filename)
    yield from _csv_rows(reader, header, bad, filename, max_rows)


def read_tsv(
    fp: IO[bytes], filename: str | None = None, *, max_rows: int | None = None
) -> Iterator[Row | RowError]:
    """TSV: as CSV, with tabs between fields."""
    return read_csv(fp, filename, delimiter="\t", max_rows=max_rows)


def _text_lines(fp: IO[bytes], bad: dict[int, str], max_line_bytes: int) -> Iterator[str]:
    # We decode line by line ourselves (rather than io.TextIOWrapper) so a
    # byte that is not UTF-8 spoils only its own row, and we know its line.
    readline = fp.readline
    cap = max_line_bytes + 1
    line = 0
    while True:
        raw = readline(cap)
        if not raw:
            return
        line += 1
        if len(raw) == cap and raw[-1:] != b"\n":
            _skip_rest_of_line(readline, raw)
            bad[line] = f"the line is longer than {max_line_bytes} bytes"
            yield "\n"
            continue
        if line == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad[line] = f"the line is not UTF-8 text (byte {exc.start + 1})"
            yield raw.decode("utf-8", "replace")


def _check_header(header: list[str], filename: str | None) -> None:
    seen: dict[str, int] = {}
    for n, name in enumerate(header, 1):
        if not name.strip():
            raise RowError(1, f"column {n} of the header has no name", filename)
        if name in seen:
            raise RowError(1, f'the header names "{name}" twice (columns {seen[name]} and {n})', filename)
        seen[name] = n


def _csv_rows(
    reader, header: list[str], bad: dict[int, str], filename: str | None, max_rows: int | None
) -> Iterator[Row | RowError]:
    width = len(header)
    end = reader.line_num  # last physical line consumed
    count = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield RowError(start, f"cannot read the row: {exc}", filename)
            continue
        end = reader.line_num
        if bad:
            spoiled = [n for n in bad if start <= n <= end]
            if spoiled:
                message = bad[spoiled[0]]
                for n in spoiled:
                    del bad[n]
                if spoiled[0] != start:  # a quoted field spans lines
                    message = f"{message}, on line {spoiled[0]}"
                yield RowError(start, message, filename)
                continue
        if not fields:
            continue  # blank line
        if len(fields) != width:
            yield RowError(start, f"the row has {len(fields)} fields, the header has {width}", filename)
            continue
        count += 1
        if max_rows is not None and count > max_rows:
            raise _too_many(start, max_rows, filename)
        yield Row(start, dict(zip(header, fields)), None, None)


# --- plain text --------------------------------------------------------------


def read_txt(
    fp: IO[bytes],
    filename: str | None = None,
    *,
    text_key: str = "text",
    max_rows: int | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Row | RowError]:
    """Plain text: each non-blank line is one item, {text_key: line}."""
    readline = fp.readline
    cap = max_line_bytes + 1
    line = 0
    count = 0
    while True:
        raw = readline(cap)
        if not raw:
            return
        line += 1
        if len(raw) == cap and raw[-1:] != b"\n":
            _skip_rest_of_line(readline, raw)
            yield RowError(line, f"the line is longer than {max_line_bytes} bytes", filename)
            continue
        if line == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RowError(line, f"the line is not UTF-8 text (byte {exc.start + 1})", filename)
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        count += 1
        if max_rows is not None and count > max_rows:
            raise _too_many(line, max_rows, filename)
        yield Row(line, {text_key: text}, None, None)
