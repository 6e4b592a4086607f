"""Timepoint: where its CT series lies (folder, zip or volume file), so GUI, reports and DICOM
exports can reopen the images of a visit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timepoint") as batch:
        batch.add_column(sa.Column("series_path", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timepoint") as batch:
        batch.drop_column("series_path")
