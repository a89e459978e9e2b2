"""required languages on projects

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 03:10:44.145688
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import annotate.models.base
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing projects require no language: an empty list.
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('required_languages', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False,
                                      server_default=sa.text("'[]'")))



def downgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('required_languages')

