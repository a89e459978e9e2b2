"""Alembic environment: the URL comes from annotate.schema.alembic_config."""
from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from annotate.extensions import make_engine
from annotate.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url) if url.startswith("sqlite") else make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Batch mode lets ALTERs work on SQLite, which cannot alter columns in place.
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
