"""Initial schema: trial, subject, identity, timepoint, reads, lesions, measurements, responses,
readers, signatures, adjudications, audit events.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-24 05:23:31.081622
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ts', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('old_values', sa.Text(), nullable=True),
    sa.Column('new_values', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hash')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_subject'), ['subject'], unique=False)

    op.create_table('reader',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=300), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('trial',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('criteria', sa.String(length=20), nullable=False),
    sa.Column('policies', sa.JSON(), nullable=False),
    sa.Column('visit_schedule', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('subject',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('reference_date', sa.Date(), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('signature',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=False),
    sa.Column('printed_name', sa.String(length=200), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('meaning', sa.String(length=64), nullable=False),
    sa.Column('signed_at', sa.String(length=32), nullable=False),
    sa.Column('record_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['reader_id'], ['reader.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('subject_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id'),
    sa.UniqueConstraint('subject_id')
    )
    op.create_table('timepoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('visit', sa.String(length=64), nullable=False),
    sa.Column('visit_num', sa.String(length=40), nullable=True),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('study_uid', sa.String(length=64), nullable=True),
    sa.Column('series_uid', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subject_id', 'visit')
    )
    op.create_table('lesion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('organ', sa.String(length=64), nullable=False),
    sa.Column('nodal', sa.Boolean(), nullable=False),
    sa.Column('created_timepoint_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_timepoint_id'], ['timepoint.id'], ),
    sa.ForeignKeyConstraint(['reader_id'], ['reader.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subject_id', 'reader_id', 'code')
    )
    op.create_table('timepoint_read',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('timepoint_id', sa.Integer(), nullable=False),
    sa.Column('reader_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('supersedes_id', sa.Integer(), nullable=True),
    sa.Column('amend_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['reader_id'], ['reader.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.ForeignKeyConstraint(['supersedes_id'], ['timepoint_read.id'], ),
    sa.ForeignKeyConstraint(['timepoint_id'], ['timepoint.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('timepoint_id', 'reader_id', 'version')
    )
    op.create_table('adjudication',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('timepoint_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('adjudicator_id', sa.Integer(), nullable=False),
    sa.Column('chosen_read_id', sa.Integer(), nullable=False),
    sa.Column('other_read_id', sa.Integer(), nullable=False),
    sa.Column('chosen_overall', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['adjudicator_id'], ['reader.id'], ),
    sa.ForeignKeyConstraint(['chosen_read_id'], ['timepoint_read.id'], ),
    sa.ForeignKeyConstraint(['other_read_id'], ['timepoint_read.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.ForeignKeyConstraint(['timepoint_id'], ['timepoint.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('timepoint_id', 'version')
    )
    op.create_table('measurement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('read_id', sa.Integer(), nullable=False),
    sa.Column('lesion_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('long_axis_mm', sa.String(length=40), nullable=True),
    sa.Column('short_axis_mm', sa.String(length=40), nullable=True),
    sa.Column('fragments_mm', sa.JSON(), nullable=False),
    sa.Column('endpoints_lps', sa.JSON(), nullable=True),
    sa.Column('volume_ml', sa.String(length=40), nullable=True),
    sa.Column('mask_path', sa.Text(), nullable=True),
    sa.Column('mask_sha256', sa.String(length=64), nullable=True),
    sa.Column('segmenter', sa.String(length=64), nullable=True),
    sa.Column('segmenter_version', sa.String(length=32), nullable=True),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['lesion_id'], ['lesion.id'], ),
    sa.ForeignKeyConstraint(['read_id'], ['timepoint_read.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('read_id', 'lesion_id')
    )
    op.create_table('timepoint_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('read_id', sa.Integer(), nullable=False),
    sa.Column('criteria', sa.String(length=20), nullable=False),
    sa.Column('target', sa.String(length=20), nullable=True),
    sa.Column('non_target', sa.String(length=20), nullable=True),
    sa.Column('new_lesions', sa.String(length=12), nullable=False),
    sa.Column('overall', sa.String(length=20), nullable=False),
    sa.Column('sod_mm', sa.String(length=40), nullable=True),
    sa.Column('baseline_mm', sa.String(length=40), nullable=True),
    sa.Column('nadir_mm', sa.String(length=40), nullable=True),
    sa.Column('pct_from_baseline', sa.String(length=40), nullable=True),
    sa.Column('pct_from_nadir', sa.String(length=40), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('computed_at', sa.String(length=32), nullable=False),
    sa.Column('confirmed_overall', sa.String(length=20), nullable=True),
    sa.Column('confirm_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['read_id'], ['timepoint_read.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('read_id')
    )


def downgrade() -> None:
    op.drop_table('timepoint_response')
    op.drop_table('measurement')
    op.drop_table('adjudication')
    op.drop_table('timepoint_read')
    op.drop_table('lesion')
    op.drop_table('timepoint')
    op.drop_table('subject_identity')
    op.drop_table('signature')
    op.drop_table('subject')
    op.drop_table('trial')
    op.drop_table('reader')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_subject'))

    op.drop_table('audit_event')
