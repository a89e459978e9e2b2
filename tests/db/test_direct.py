"""Prepared statements on each thread's DBAPI connection (annotate.prepared, Database.direct):
what they write reads back through the ORM the same, a failed unit of work leaves nothing,
and SQLite's writers queue across processes."""
from __future__ import annotations

import datetime as dt
import fcntl
import multiprocessing
import os
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from annotate.extensions import db
from annotate.sqlite import WriterLock
from annotate.models import AuditEntry, utcnow
from annotate.prepared import Prepared

_NEW_ENTRY = Prepared(sa.insert(AuditEntry).inline(),
                      ["actor_id", "action", "target_type", "target_id", "reason", "details", "created_at"])
_ACTIONS = Prepared(select(AuditEntry.action, sa.cast(AuditEntry.details, sa.Text)).order_by(AuditEntry.id))


def _entry(action: str, when: dt.datetime, **details) -> dict:
    return {"actor_id": None, "action": action, "target_type": "user", "target_id": 1, "reason": "", "details": details,
            "created_at": when}


def test_rows_written_directly_read_back_through_the_orm_alike(app):
    when = dt.datetime(2026, 12, 7, 13, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with app.app_context():
        direct = db.direct()
        with direct.transaction():
            direct.executemany(_NEW_ENTRY, [_entry("first", when, n=1), _entry("second", when, n=2)])
        stored = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        assert [(e.action, e.details, e.created_at) for e in stored] == [
            ("first", {"n": 1}, when), ("second", {"n": 2}, when)]
        assert stored[0].created_at.tzinfo == dt.UTC  # stored as UTC, as the ORM stores it
        assert [action for action, _details in direct.execute(_ACTIONS).fetchall()] == ["first", "second"]


def test_a_unit_of_work_that_fails_leaves_nothing(app):
    with app.app_context():
        direct = db.direct()
        with pytest.raises(RuntimeError, match="half way"):
            with direct.transaction():
                direct.execute(_NEW_ENTRY, _entry("lost", utcnow()))
                raise RuntimeError("half way")
        assert direct.execute(_ACTIONS).fetchall() == []
        with pytest.raises(RuntimeError, match="do not nest"):
            with direct.transaction(), direct.transaction():
                pass


def test_each_thread_keeps_its_own_connection(app):
    seen = {}

    def use(name: str) -> None:
        with app.app_context():
            seen[name] = (db.direct(), db.direct())

    threads = [threading.Thread(target=use, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["a"][0] is seen["a"][1] and seen["b"][0] is seen["b"][1]
    assert seen["a"][0].connection is not seen["b"][0].connection


def test_threads_that_come_and_go_give_their_connections_back(app):
    # Werkzeug's server starts a thread per request: 40 of them, where the pool holds 15.
    errors = []

    def one_request() -> None:
        try:
            with app.app_context():
                db.direct().execute(_ACTIONS).fetchall()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    for _ in range(40):
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join()
    assert errors == []


def test_statements_that_cannot_be_prepared_say_why():
    from sqlalchemy.dialects import sqlite

    from annotate.models import Assignment

    missing = Prepared(sa.insert(AuditEntry), ["action"])
    with pytest.raises(ValueError, match="must be given a value for"):
        missing.compiled(sqlite.dialect())
    in_list = Prepared(select(Assignment.id).where(Assignment.status.in_(("leased", "submitted"))))
    with pytest.raises(ValueError, match="IN lists"):
        in_list.compiled(sqlite.dialect())
    from sqlalchemy.dialects import postgresql

    many = _NEW_ENTRY.compiled(postgresql.psycopg.dialect())
    assert many.rows_sql(3).count("%s::VARCHAR") == 3 * many.sql.count("%s::VARCHAR")  # three rows' values
    returning = Prepared(sa.insert(AuditEntry).returning(AuditEntry.id), _NEW_ENTRY.columns)
    with pytest.raises(ValueError, match="not a single-row INSERT"):
        returning.compiled(postgresql.psycopg.dialect()).rows_sql(2)


def _hold_lock(path: str, held, release) -> None:
    with WriterLock(path):
        held.set()
        release.wait(10)


def test_sqlite_writers_of_two_processes_take_turns(tmp_path):
    path = str(tmp_path / "db-writer.lock")
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    other = context.Process(target=_hold_lock, args=(path, held, release))
    other.start()
    try:
        assert held.wait(10)
        fd = os.open(path, os.O_RDWR)
        with pytest.raises(BlockingIOError):  # the other process holds it
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        release.set()
        other.join(10)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once it committed
        os.close(fd)
    finally:
        release.set()
        other.join(10)


def test_a_connection_the_server_dropped_is_replaced(app):
    if db_dialect(app) != "postgresql":
        pytest.skip("only a server can drop a connection")
    with app.app_context():
        first = db.direct()
        pid = first.connection.info.backend_pid
        with db.engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(Exception):
            first.execute(_ACTIONS).fetchall()
        assert first.broken
        again = db.direct()
        assert again is not first and again.execute(_ACTIONS).fetchall() == []


def db_dialect(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


def test_a_direct_write_inside_the_sessions_write_transaction_is_refused_at_once(app):
    if db_dialect(app) != "sqlite":
        pytest.skip("PostgreSQL's writers do not wait for each other's whole transaction")
    with app.app_context():
        with pytest.raises(RuntimeError, match="wait for itself"):
            with db.transaction():
                with db.direct().transaction():
                    pass
        with db.direct().transaction():  # and the lock was given back
            pass


def test_sqlite_commits_leave_checkpoints_to_a_thread_of_their_own(app):
    if db_dialect(app) != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    import time

    from annotate.sqlite import BACKSTOP_PAGES, database_path

    with app.app_context():
        path = database_path(db.engine)
        autocheckpoint = db.direct().connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        # No commit of this size copies the log back, fsyncs and all, in the writer queue.
        assert autocheckpoint == BACKSTOP_PAGES
        before = os.path.getsize(path)
        direct = db.direct()
        for batch in range(20):
            with direct.transaction():
                direct.executemany(_NEW_ENTRY, [_entry(f"entry {batch}-{i}", utcnow(), padding="x" * 500)
                                                for i in range(100)])
        deadline = time.monotonic() + 10
        while os.path.getsize(path) < before + 1_000_000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.path.getsize(path) >= before + 1_000_000, "the log was not copied into the database file"
