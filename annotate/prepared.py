"""Statements of the request hot path, compiled once and run on the DBAPI connection.

SQLAlchemy builds each statement, so table and column names have one source
of truth and the SQL fits the dialect; the compiled text and the bind
processors SQLAlchemy would apply are kept per dialect, and a call runs the
text on a DBAPI cursor. A Core `execute` of a cached statement costs over
100 µs of Python on this machine where the DBAPI call costs under 10
(bench/dispatch.py shows what that buys), which matters on the few paths
every annotator hits several times a minute: next, submit, token look-up.

Values that come back are the driver's: booleans may be 0/1 on SQLite, and a
JSON column should be selected as `sa.cast(column, sa.Text)` to get its text.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # parameter order for positional paramstyles, None for named ones
    defaults: Mapping[str, Any]  # literal values the statement itself binds
    processors: Mapping[str, Callable[[Any], Any]]
    _rows_sql: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = {**self.defaults, **values} if self.defaults else dict(values)
        for name, process in self.processors.items():
            if name in merged:
                merged[name] = process(merged[name])
        if self.names is None:
            return merged
        return [merged[name] for name in self.names]

    def rows_sql(self, count: int) -> str:
        """This single-row INSERT as one statement of `count` rows (positional parameters)."""
        found = self._rows_sql.get(count)
        if found is None:
            head, values_word, values = self.sql.partition(" VALUES ")
            if not values_word or " RETURNING " in values or self.names is None:
                raise ValueError(f"{self.sql!r} is not a single-row INSERT with positional parameters")
            found = self._rows_sql[count] = head + values_word + ", ".join([values] * count)
        return found

    def many(self, rows: Iterable[Mapping[str, Any]]) -> list:
        """`parameters` of each row, processing a value the rows share (the same object,
        such as one timestamp for a whole insert) once."""
        out = []
        done: dict[str, tuple[Any, Any]] = {}  # name -> (the last value given, what it became)
        names = self.names
        for values in rows:
            merged = {**self.defaults, **values} if self.defaults else dict(values)
            for name, process in self.processors.items():
                if name in merged:
                    value = merged[name]
                    last = done.get(name)
                    if last is not None and last[0] is value:
                        merged[name] = last[1]
                    else:
                        merged[name] = processed = process(value)
                        done[name] = (value, processed)
            out.append(merged if names is None else [merged[name] for name in names])
        return out


class Prepared:
    """One Core statement; `columns` names the values an INSERT takes."""

    def __init__(self, statement: ClauseElement, columns: Iterable[str] | None = None):
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        if not dialect.positional and dialect.name == "postgresql":
            # psycopg takes %s with a sequence faster than %(name)s with a mapping.
            dialect = copy.copy(dialect)
            dialect.paramstyle, dialect.positional = "format", True
        compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
        if "POSTCOMPILE" in str(compiled):
            raise ValueError(f"{self!r}: IN lists are rendered per execution; write them as equalities joined by OR")
        processors = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        if self.columns is not None:
            # SQLAlchemy fills a column's Python-side default at execution, which this path skips.
            missing = sorted(set(compiled.params) - set(self.columns))
            if missing:
                raise ValueError(f"{self!r} must be given a value for {', '.join(missing)}")
        names = tuple(compiled.positiontup) if compiled.positional else None
        defaults = {name: value for name, value in compiled.params.items() if not compiled.binds[name].required}
        return _Compiled(str(compiled), names, defaults, processors)

    def __repr__(self) -> str:
        return f"<Prepared {self.statement}>"
