"""project deadline (when the requester needs the labels, used by matching) and
the confidence bar below which pre-annotations are not shown

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import annotate.models.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        # Existing projects have no deadline.
        batch_op.add_column(sa.Column('deadline', annotate.models.base.UTCDateTime(timezone=True), nullable=True))
        # Existing projects keep showing every pre-annotation.
        batch_op.add_column(sa.Column('prediction_min_score', sa.Double(), nullable=False,
                                      server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('prediction_min_score')
        batch_op.drop_column('deadline')
