"""model assistance: the ML backend allow-list, retrain growth and backend errors on projects

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 06:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import annotate.models.base

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ml_backend',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('added_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('checked_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_ok_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['added_by_id'], ['user.id'], name=op.f('fk_ml_backend_added_by_id_user'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ml_backend')),
        sa.UniqueConstraint('url', name=op.f('uq_ml_backend_url')),
    )
    with op.batch_alter_table('ml_backend', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ml_backend_added_by_id'), ['added_by_id'], unique=False)
    with op.batch_alter_table('project', schema=None) as batch_op:
        # Existing projects retrain after 20% more consensus labels, the default.
        batch_op.add_column(sa.Column('retrain_growth', sa.Double(), nullable=False, server_default=sa.text('0.2')))
        batch_op.add_column(sa.Column('assist_error', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('assist_error')
        batch_op.drop_column('retrain_growth')
    with op.batch_alter_table('ml_backend', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ml_backend_added_by_id'))
    op.drop_table('ml_backend')
