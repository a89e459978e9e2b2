"""item embeddings: the sentence vector of each item's text, which the built-in learner reads

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 04:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nothing to fill: vectors are computed on demand, by the next refresh or training of each project.
    op.create_table(
        'item_embedding',
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('encoder', sa.String(length=120), nullable=False),
        sa.Column('data_key', sa.String(length=120), nullable=False),
        sa.Column('vector', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_item_embedding_item_id_item'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('item_id', name=op.f('pk_item_embedding')),
    )


def downgrade() -> None:
    op.drop_table('item_embedding')
