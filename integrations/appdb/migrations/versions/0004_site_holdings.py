"""What each cloud site reports it holds: copies of image versions (by SHA-512) and how many
instances run from each, so that a campaign can name the sites it concerns.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integrations.appdb.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A site's report replaces its rows whole; campaigns look the rows up by SHA-512.
    op.create_table(
        "site_holdings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("site", "sha512", name="uq_site_holdings_site_sha512"),
    )
    op.create_index("ix_site_holdings_sha512", "site_holdings", ["sha512"])


def downgrade() -> None:
    op.drop_table("site_holdings")
