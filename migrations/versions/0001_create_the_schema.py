"""create the schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 02:28:26.016641
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import annotate.models.base
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('content_category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_category')),
    sa.UniqueConstraint('name', name=op.f('uq_content_category_name'))
    )
    op.create_table('team',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('name', name=op.f('uq_team_name'))
    )
    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('is_annotator', sa.Boolean(), nullable=False),
    sa.Column('is_requester', sa.Boolean(), nullable=False),
    sa.Column('is_operator', sa.Boolean(), nullable=False),
    sa.Column('blocked_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('blocked_reason', sa.Text(), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_active_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('email', name=op.f('uq_user_email'))
    )
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_api_token_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_token_key_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], name=op.f('fk_audit_entry_actor_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_audit_entry_target', ['target_type', 'target_id'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_membership_team_id_team'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_membership_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership')),
    sa.UniqueConstraint('team_id', 'user_id', name=op.f('uq_membership_team_id_user_id'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_team_id'), ['team_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_membership_user_id'), ['user_id'], unique=False)

    op.create_table('payroll_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_end', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paid_by_id', sa.Integer(), nullable=True),
    sa.Column('totals', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_payroll_run_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['paid_by_id'], ['user.id'], name=op.f('fk_payroll_run_paid_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payroll_run'))
    )
    with op.batch_alter_table('payroll_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payroll_run_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payroll_run_paid_by_id'), ['paid_by_id'], unique=False)

    op.create_table('profile',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('languages', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('opted_out_categories', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('liked_kinds', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_profile_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_profile'))
    )
    op.create_table('project',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('label_config', sa.Text(), nullable=False),
    sa.Column('config_kind', sa.String(length=32), nullable=False),
    sa.Column('instructions', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('archived_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('overlap', sa.Integer(), nullable=False),
    sa.Column('max_overlap', sa.Integer(), nullable=False),
    sa.Column('items_per_micro_task', sa.Integer(), nullable=False),
    sa.Column('lease_seconds', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('gold_share', sa.Double(), nullable=False),
    sa.Column('qualification_gold_count', sa.Integer(), nullable=False),
    sa.Column('qualification_min_accuracy', sa.Double(), nullable=False),
    sa.Column('max_share_per_annotator', sa.Double(), nullable=True),
    sa.Column('content_categories', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('pay_per_micro_task', sa.BigInteger(), nullable=False),
    sa.Column('qualification_pay', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('bonus_quality_target', sa.Double(), nullable=True),
    sa.Column('bonus_amount', sa.BigInteger(), nullable=False),
    sa.Column('estimated_seconds_per_micro_task', sa.Integer(), nullable=True),
    sa.Column('approve_quality_threshold', sa.Double(), nullable=False),
    sa.Column('review_window_seconds', sa.Integer(), nullable=False),
    sa.Column('confidence_target', sa.Double(), nullable=False),
    sa.Column('iou_threshold', sa.Double(), nullable=False),
    sa.Column('show_predictions', sa.Boolean(), nullable=False),
    sa.Column('assist', sa.String(length=16), nullable=False),
    sa.Column('ml_backend_url', sa.String(length=500), nullable=True),
    sa.Column('unassisted_share', sa.Double(), nullable=False),
    sa.Column('queue_order', sa.String(length=16), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('items_per_micro_task >= 1', name=op.f('ck_project_items_per_micro_task_positive')),
    sa.CheckConstraint('lease_seconds >= 30', name=op.f('ck_project_lease_long_enough')),
    sa.CheckConstraint('max_overlap >= overlap', name=op.f('ck_project_max_overlap_covers_overlap')),
    sa.CheckConstraint('overlap >= 1', name=op.f('ck_project_overlap_positive')),
    sa.CheckConstraint('pay_per_micro_task >= 0', name=op.f('ck_project_pay_not_negative')),
    sa.CheckConstraint('qualification_pay >= 0', name=op.f('ck_project_qualification_pay_not_negative')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_project_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_project_team_id_team')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project'))
    )
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index('ix_project_status_priority', ['status', 'priority'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_team_id'), ['team_id'], unique=False)

    op.create_table('skill',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('config_kind', sa.String(length=32), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_skill_created_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_skill')),
    sa.UniqueConstraint('name', name=op.f('uq_skill_name'))
    )
    with op.batch_alter_table('skill', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_skill_created_by_id'), ['created_by_id'], unique=False)

    op.create_table('annotator_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('quality', sa.Double(), nullable=False),
    sa.Column('agreement', sa.Double(), nullable=True),
    sa.Column('gold_right', sa.Integer(), nullable=False),
    sa.Column('gold_total', sa.Integer(), nullable=False),
    sa.Column('n_items', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], name=op.f('fk_annotator_score_annotator_id_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_annotator_score_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotator_score')),
    sa.UniqueConstraint('annotator_id', 'project_id', name=op.f('uq_annotator_score_annotator_id_project_id'))
    )
    with op.batch_alter_table('annotator_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotator_score_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotator_score_project_id'), ['project_id'], unique=False)

    op.create_table('assist_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('training_size', sa.Integer(), nullable=False),
    sa.Column('heldout_accuracy', sa.Double(), nullable=True),
    sa.Column('artifact_path', sa.String(length=500), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_assist_model_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assist_model')),
    sa.UniqueConstraint('project_id', 'version', name=op.f('uq_assist_model_project_id_version'))
    )
    with op.batch_alter_table('assist_model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assist_model_project_id'), ['project_id'], unique=False)

    op.create_table('background_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rq_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('errors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_background_job_project_id_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_background_job_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_background_job')),
    sa.UniqueConstraint('rq_id', name=op.f('uq_background_job_rq_id'))
    )
    with op.batch_alter_table('background_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_background_job_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_background_job_project_id_kind', ['project_id', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_background_job_user_id'), ['user_id'], unique=False)

    op.create_table('micro_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('is_qualification', sa.Boolean(), nullable=False),
    sa.Column('overlap', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('taken', sa.Integer(), nullable=False),
    sa.Column('submitted', sa.Integer(), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('submitted >= 0 AND submitted <= taken', name=op.f('ck_micro_task_submitted_within_taken')),
    sa.CheckConstraint('taken >= 0 AND taken <= overlap', name=op.f('ck_micro_task_taken_within_overlap')),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_micro_task_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_micro_task')),
    sa.UniqueConstraint('project_id', 'seq', name=op.f('uq_micro_task_project_id_seq'))
    )
    with op.batch_alter_table('micro_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_micro_task_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_micro_task_project_id_status', ['project_id', 'status'], unique=False)

    op.create_table('project_score',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('alpha', sa.Double(), nullable=True),
    sa.Column('alpha_low', sa.Double(), nullable=True),
    sa.Column('alpha_high', sa.Double(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_score_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_project_score'))
    )
    op.create_table('project_skill',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=False),
    sa.Column('min_level', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_skill_project_id_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['skill_id'], ['skill.id'], name=op.f('fk_project_skill_skill_id_skill'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_skill')),
    sa.UniqueConstraint('project_id', 'skill_id', name=op.f('uq_project_skill_project_id_skill_id'))
    )
    with op.batch_alter_table('project_skill', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_skill_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_skill_skill_id'), ['skill_id'], unique=False)

    op.create_table('skill_level',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('confidence', sa.Double(), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('level >= 0 AND level <= 100', name=op.f('ck_skill_level_level_in_range')),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], name=op.f('fk_skill_level_annotator_id_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['skill_id'], ['skill.id'], name=op.f('fk_skill_level_skill_id_skill'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_skill_level')),
    sa.UniqueConstraint('annotator_id', 'skill_id', name=op.f('uq_skill_level_annotator_id_skill_id'))
    )
    with op.batch_alter_table('skill_level', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_skill_level_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_skill_level_skill_id'), ['skill_id'], unique=False)

    op.create_table('assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('micro_task_id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('leased_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_expires_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('skip_reason', sa.Text(), nullable=True),
    sa.Column('active_seconds', sa.Double(), nullable=False),
    sa.Column('with_predictions', sa.Boolean(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=True),
    sa.Column('decision_rule', sa.String(length=64), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('decided_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], name=op.f('fk_assignment_annotator_id_user')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_assignment_decided_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['micro_task_id'], ['micro_task.id'], name=op.f('fk_assignment_micro_task_id_micro_task'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_assignment_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment')),
    sa.UniqueConstraint('micro_task_id', 'annotator_id', name=op.f('uq_assignment_micro_task_id_annotator_id'))
    )
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignment_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index('ix_assignment_annotator_id_status', ['annotator_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_decided_by_id'), ['decided_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_micro_task_id'), ['micro_task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_project_id'), ['project_id'], unique=False)
        batch_op.create_index('ix_assignment_project_id_decision', ['project_id', 'decision'], unique=False)
        batch_op.create_index('ix_assignment_status_lease_expires_at', ['status', 'lease_expires_at'], unique=False)

    op.create_table('item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.BigInteger(), nullable=False),
    sa.Column('is_gold', sa.Boolean(), nullable=False),
    sa.Column('imported_annotations', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('import_job_id', sa.Integer(), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['import_job_id'], ['background_job.id'], name=op.f('fk_item_import_job_id_background_job'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_item_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item')),
    sa.UniqueConstraint('project_id', 'content_hash', name=op.f('uq_item_project_id_content_hash'))
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_import_job_id'), ['import_job_id'], unique=False)

    op.create_table('skill_level_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('skill_level_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['user.id'], name=op.f('fk_skill_level_change_changed_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['skill_level_id'], ['skill_level.id'], name=op.f('fk_skill_level_change_skill_level_id_skill_level'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_skill_level_change'))
    )
    with op.batch_alter_table('skill_level_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_skill_level_change_changed_by_id'), ['changed_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_skill_level_change_skill_level_id'), ['skill_level_id'], unique=False)

    op.create_table('annotation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=False),
    sa.Column('had_prediction', sa.Boolean(), nullable=False),
    sa.Column('accepted_prediction', sa.Boolean(), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_annotation_assignment_id_assignment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_annotation_item_id_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation')),
    sa.UniqueConstraint('assignment_id', 'item_id', name=op.f('uq_annotation_assignment_id_item_id'))
    )
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_item_id'), ['item_id'], unique=False)

    op.create_table('appeal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requester_response', sa.Text(), nullable=True),
    sa.Column('operator_response', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', annotate.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], name=op.f('fk_appeal_annotator_id_user')),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_appeal_assignment_id_assignment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_appeal_decided_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeal')),
    sa.UniqueConstraint('assignment_id', name=op.f('uq_appeal_assignment_id'))
    )
    with op.batch_alter_table('appeal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeal_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_decided_by_id'), ['decided_by_id'], unique=False)

    op.create_table('assignment_score',
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('quality', sa.Double(), nullable=False),
    sa.Column('agreement', sa.Double(), nullable=True),
    sa.Column('gold_right', sa.Integer(), nullable=False),
    sa.Column('gold_total', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('computed_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_assignment_score_assignment_id_assignment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('assignment_id', name=op.f('pk_assignment_score'))
    )
    op.create_table('gold_answer',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_gold_answer_item_id_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_gold_answer'))
    )
    op.create_table('item_score',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('consensus', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('confidence', sa.Double(), nullable=False),
    sa.Column('agreement', sa.Double(), nullable=False),
    sa.Column('n_annotators', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('updated_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_item_score_item_id_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_item_score_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_item_score'))
    )
    with op.batch_alter_table('item_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_score_project_id'), ['project_id'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('memo', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payroll_run_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('earning', 'bonus', 'top_up', 'adjustment')", name=op.f('ck_ledger_entry_kind_known')),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], name=op.f('fk_ledger_entry_annotator_id_user')),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_ledger_entry_assignment_id_assignment'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_ledger_entry_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['payroll_run_id'], ['payroll_run.id'], name=op.f('fk_ledger_entry_payroll_run_id_payroll_run')),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_ledger_entry_project_id_project'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_entry_idempotency_key'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_annotator_id'), ['annotator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_payroll_run_id'), ['payroll_run_id'], unique=False)
        batch_op.create_index('ix_ledger_entry_payroll_run_id_created_at', ['payroll_run_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_project_id'), ['project_id'], unique=False)

    op.create_table('micro_task_item',
    sa.Column('micro_task_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_micro_task_item_item_id_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['micro_task_id'], ['micro_task.id'], name=op.f('fk_micro_task_item_micro_task_id_micro_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('micro_task_id', 'position', name=op.f('pk_micro_task_item')),
    sa.UniqueConstraint('micro_task_id', 'item_id', name=op.f('uq_micro_task_item_micro_task_id_item_id'))
    )
    with op.batch_alter_table('micro_task_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_micro_task_item_item_id'), ['item_id'], unique=False)

    op.create_table('prediction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('assist_model_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('score', sa.Double(), nullable=True),
    sa.Column('model_version', sa.String(length=120), nullable=False),
    sa.Column('created_at', annotate.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assist_model_id'], ['assist_model.id'], name=op.f('fk_prediction_assist_model_id_assist_model'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_prediction_item_id_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prediction'))
    )
    with op.batch_alter_table('prediction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prediction_assist_model_id'), ['assist_model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_prediction_item_id'), ['item_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('prediction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prediction_item_id'))
        batch_op.drop_index(batch_op.f('ix_prediction_assist_model_id'))

    op.drop_table('prediction')
    with op.batch_alter_table('micro_task_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_micro_task_item_item_id'))

    op.drop_table('micro_task_item')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_project_id'))
        batch_op.drop_index('ix_ledger_entry_payroll_run_id_created_at')
        batch_op.drop_index(batch_op.f('ix_ledger_entry_payroll_run_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_created_by_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_assignment_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_annotator_id'))

    op.drop_table('ledger_entry')
    with op.batch_alter_table('item_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_score_project_id'))

    op.drop_table('item_score')
    op.drop_table('gold_answer')
    op.drop_table('assignment_score')
    with op.batch_alter_table('appeal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_decided_by_id'))
        batch_op.drop_index(batch_op.f('ix_appeal_annotator_id'))

    op.drop_table('appeal')
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotation_item_id'))
        batch_op.drop_index(batch_op.f('ix_annotation_assignment_id'))

    op.drop_table('annotation')
    with op.batch_alter_table('skill_level_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_skill_level_change_skill_level_id'))
        batch_op.drop_index(batch_op.f('ix_skill_level_change_changed_by_id'))

    op.drop_table('skill_level_change')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_import_job_id'))

    op.drop_table('item')
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_index('ix_assignment_status_lease_expires_at')
        batch_op.drop_index('ix_assignment_project_id_decision')
        batch_op.drop_index(batch_op.f('ix_assignment_project_id'))
        batch_op.drop_index(batch_op.f('ix_assignment_micro_task_id'))
        batch_op.drop_index(batch_op.f('ix_assignment_decided_by_id'))
        batch_op.drop_index('ix_assignment_annotator_id_status')
        batch_op.drop_index(batch_op.f('ix_assignment_annotator_id'))

    op.drop_table('assignment')
    with op.batch_alter_table('skill_level', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_skill_level_skill_id'))
        batch_op.drop_index(batch_op.f('ix_skill_level_annotator_id'))

    op.drop_table('skill_level')
    with op.batch_alter_table('project_skill', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_skill_skill_id'))
        batch_op.drop_index(batch_op.f('ix_project_skill_project_id'))

    op.drop_table('project_skill')
    op.drop_table('project_score')
    with op.batch_alter_table('micro_task', schema=None) as batch_op:
        batch_op.drop_index('ix_micro_task_project_id_status')
        batch_op.drop_index(batch_op.f('ix_micro_task_project_id'))

    op.drop_table('micro_task')
    with op.batch_alter_table('background_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_background_job_user_id'))
        batch_op.drop_index('ix_background_job_project_id_kind')
        batch_op.drop_index(batch_op.f('ix_background_job_project_id'))

    op.drop_table('background_job')
    with op.batch_alter_table('assist_model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assist_model_project_id'))

    op.drop_table('assist_model')
    with op.batch_alter_table('annotator_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotator_score_project_id'))
        batch_op.drop_index(batch_op.f('ix_annotator_score_annotator_id'))

    op.drop_table('annotator_score')
    with op.batch_alter_table('skill', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_skill_created_by_id'))

    op.drop_table('skill')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_team_id'))
        batch_op.drop_index('ix_project_status_priority')
        batch_op.drop_index(batch_op.f('ix_project_created_by_id'))

    op.drop_table('project')
    op.drop_table('profile')
    with op.batch_alter_table('payroll_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payroll_run_paid_by_id'))
        batch_op.drop_index(batch_op.f('ix_payroll_run_created_by_id'))

    op.drop_table('payroll_run')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_user_id'))
        batch_op.drop_index(batch_op.f('ix_membership_team_id'))

    op.drop_table('membership')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_target')
        batch_op.drop_index(batch_op.f('ix_audit_entry_created_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_actor_id'))

    op.drop_table('audit_entry')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_user_id'))

    op.drop_table('api_token')
    op.drop_table('user')
    op.drop_table('team')
    op.drop_table('content_category')
