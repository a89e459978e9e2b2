"""The migrations build exactly the models' schema, on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from annotate import schema
from annotate.extensions import make_engine
from annotate.models import Base


def _sqlite(tmp_path):
    yield f"sqlite:///{tmp_path / 'migrations.db'}"


def _postgres():
    """A scratch database on the test server, dropped afterwards."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set")
    name = f"annotate_migrations_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    source = _sqlite(tmp_path) if request.param == "sqlite" else _postgres()
    yield from source


def _differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_gives_exactly_the_models_schema(empty_database):
    schema.upgrade(empty_database)
    assert _differences(empty_database) == []


def test_downgrade_then_upgrade_again(empty_database):
    schema.upgrade(empty_database)
    schema.downgrade(empty_database, "base")
    engine = make_engine(empty_database)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    schema.upgrade(empty_database)
    assert _differences(empty_database) == []


def test_one_migration_head():
    heads = ScriptDirectory.from_config(schema.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1


def test_every_foreign_key_is_indexed():
    """Joins and cascades on an unindexed foreign key scan the whole table."""
    missing = []
    for table in Base.metadata.sorted_tables:
        leading = {tuple(c.name for c in index.columns)[:1] for index in table.indexes}
        leading |= {tuple(c.name for c in constraint.columns)[:1] for constraint in table.constraints
                    if hasattr(constraint, "columns") and constraint.__class__.__name__ in
                    ("UniqueConstraint", "PrimaryKeyConstraint")}
        for fk in table.foreign_keys:
            if (fk.parent.name,) not in leading:
                missing.append(f"{table.name}.{fk.parent.name}")
    assert missing == []


def test_money_columns_are_integers():
    from sqlalchemy import Integer

    money = {("project", "pay_per_micro_task"), ("project", "qualification_pay"), ("project", "bonus_amount"),
             ("ledger_entry", "amount")}
    for table, column in money:
        assert isinstance(Base.metadata.tables[table].c[column].type, Integer), f"{table}.{column}"


def test_the_deadline_migration_adds_a_nullable_utc_column_and_takes_it_away_again(empty_database):
    schema.upgrade(empty_database, "0003")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:  # a project made before deadlines existed
            conn.execute(text("INSERT INTO team (name, created_at) VALUES ('t', CURRENT_TIMESTAMP)"))
            conn.execute(text(
                "INSERT INTO project (team_id, title, description, label_config, config_kind, instructions, status, "
                "overlap, max_overlap, items_per_micro_task, lease_seconds, priority, gold_share, "
                "qualification_gold_count, qualification_min_accuracy, content_categories, required_languages, "
                "pay_per_micro_task, qualification_pay, currency, bonus_amount, approve_quality_threshold, "
                "review_window_seconds, confidence_target, iou_threshold, show_predictions, assist, "
                "unassisted_share, retrain_growth, queue_order, created_at, updated_at) VALUES (1, 'old', '', "
                "'<View/>', 'other', '', 'draft', 3, 3, 10, 900, 0, 0, 0, 0.8, '[]', '[]', 0, 0, 'USD', 0, 0.7, 3600, "
                "0.7, 0.5, false, 'none', 0.1, 0.2, 'default', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        schema.upgrade(empty_database, "0004")
        column = next(c for c in inspect(engine).get_columns("project") if c["name"] == "deadline")
        assert column["nullable"] is True
        with engine.connect() as conn:
            assert conn.execute(text("SELECT deadline FROM project")).scalar_one() is None
        schema.downgrade(empty_database, "0003")
        engine.dispose()
        assert "deadline" not in {c["name"] for c in inspect(engine).get_columns("project")}
    finally:
        engine.dispose()
