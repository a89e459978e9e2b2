"""skill level evidence digest (a hash of the stored evidence, so a recomputation
need not decode every level's evidence to see whether it changed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 05:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('skill_level', schema=None) as batch_op:
        # Existing levels have none: the next recomputation rewrites their evidence once, unchanged.
        batch_op.add_column(sa.Column('evidence_digest', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('skill_level', schema=None) as batch_op:
        batch_op.drop_column('evidence_digest')
