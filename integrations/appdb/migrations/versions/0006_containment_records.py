"""What cloud sites did to contain a withdrawn image: one row per step of a site agent's action
log (object, action, result, state before and after), per image, site and incident.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integrations.appdb.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows are only ever added; the unique content key per image makes a log sent again (after
    # a network failure, or whole after a resumed run) add nothing. The image page and the API
    # read an image's records in time order: that is the second index.
    op.create_table(
        "containment_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("content_key", sa.String(64), nullable=False),
        sa.Column("image_ref", sa.String(255), nullable=False),
        sa.Column("sha512", sa.String(128), nullable=True),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("incident", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("object_kind", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("object_name", sa.String(1024), nullable=True),
        sa.Column("object_project", sa.String(255), nullable=True),
        sa.Column("action", sa.String(63), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("state_before", sa.Text(), nullable=True),
        sa.Column("state_after", sa.Text(), nullable=True),
        sa.Column("sent_by", sa.String(255), nullable=False),
        sa.Column("received", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("image_id", "content_key", name="uq_containment_records_image_key"),
    )
    op.create_index("ix_containment_records_image_at", "containment_records", ["image_id", "at"])
    op.create_index("ix_containment_records_sha512", "containment_records", ["sha512"])


def downgrade() -> None:
    op.drop_table("containment_records")
