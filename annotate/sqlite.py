"""What SQLite needs to serve many writers well: its settings per connection, a queue
for writers across threads and processes, and checkpoints off the write path.

SQLite takes one writer at a time. In WAL mode readers never wait for it, and a
commit appends to the write-ahead log; the log is copied back into the database
file by a checkpoint. By default the commit that grows the log past 1,000 pages
runs that checkpoint itself, fsyncs included, while our writer queue still holds
it: every other writer waits for the disk. Here a thread of each writing process
checkpoints once a second after a write (`Checkpointer`), and commits only do
when the log has grown far past that.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, event

CHECKPOINT_EVERY = 1.0  # seconds between a write and the checkpoint that follows it
BACKSTOP_PAGES = 16384  # a commit checkpoints only when the log grows past this (64 MiB of 4 KiB pages)


def configure(engine: Engine) -> None:
    """Settings for each new connection, and writers that take the write lock up front."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN, so writers can ask for IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The Checkpointer's job; this is a backstop for a process whose writes
        # do not pass the writer queue (a migration, a shell), so its log stays bounded.
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        # 64 MiB of page cache: bulk imports insert into large, random-order indexes.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A writer takes the write lock up front: upgrading a read
        # transaction later can fail at once with "database is locked".
        conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", "DEFERRED"))


def database_path(engine: Engine) -> str | None:
    """The file of a file-backed SQLite engine; None for anything else."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


class Checkpointer:
    """Copies the write-ahead log back into the database file (a PASSIVE checkpoint,
    which waits for no reader and no writer) from a thread of its own, a second
    after writes. `wrote()` is cheap: the writer queue calls it after each write."""

    def __init__(self, path: str):
        self.path = path
        self._writes = 0
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._start = threading.Lock()

    def wrote(self) -> None:
        self._writes += 1
        if self._pid != os.getpid():  # first write of this process (or of a forked child)
            with self._start:
                if self._pid != os.getpid():
                    self._stopping = threading.Event()
                    self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
                    self._thread.start()
                    self._pid = os.getpid()

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint now: (busy, frames in the log, frames copied)."""
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            return tuple(connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())  # type: ignore[return-value]
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        stopping, seen = self._stopping, self._writes
        while not stopping.wait(CHECKPOINT_EVERY):
            if self._writes == seen:
                continue
            seen = self._writes
            if not os.path.exists(self.path):  # a database removed under us (tests)
                return
            try:
                self.checkpoint()
            except sqlite3.Error:  # busy or gone for now; the next write tries again
                continue


class WriterLock:
    """Where SQLite's writers queue: the threads of a process on a re-entrant lock
    (a service may call another), processes on an flock of a file beside the
    database. Both wake the next writer as soon as the last one commits, where
    SQLite's own busy handler sleeps up to 100 ms between tries."""

    def __init__(self, path: str | None, checkpointer: Checkpointer | None = None):
        self._lock = threading.RLock()
        self._depth = 0
        self._path = path
        self._fd: int | None = None
        self._pid = 0
        self.checkpointer = checkpointer

    def __enter__(self) -> "WriterLock":
        self._lock.acquire()
        self._depth += 1
        if self._depth == 1 and self._path is not None:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._lock.release()
                raise
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._depth -= 1
        last = self._depth == 0
        if last and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()
        if last and self.checkpointer is not None:
            self.checkpointer.wrote()

    @property
    def nested(self) -> bool:
        """Whether the thread holding the lock took it more than once."""
        return self._depth > 1

    def _file(self) -> int:
        # A forked child shares its parent's open file, and with it the lock: it opens its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd


def writer_lock(engine: Engine) -> WriterLock:
    """The writer queue for `engine`: across processes and with checkpoints for a file database."""
    path = database_path(engine)
    if path is None:
        return WriterLock(None)
    return WriterLock(path + "-writer.lock", Checkpointer(path))
