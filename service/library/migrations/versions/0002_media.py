"""Videos kept in the media folder: each analysis says whether its video is still there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # analyses stored before this revision kept no video in the library
    op.add_column("videos", sa.Column("video_kept", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("video_kept")
