"""Image inventories (packages, hashed files) beside the reports, and saved campaigns over them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integrations.appdb.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventories",
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("report_id", sa.String(128), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("not_hashed", sa.Integer(), nullable=False),
        sa.Column("packages", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("stored", UTCDateTime(), nullable=False),
    )
    # Campaigns find packages by name and files by hash or name: those are the indexes. The
    # indexed texts are held to 1,024 bytes (inventory.py), under PostgreSQL's limit on a
    # B-tree entry.
    op.create_table(
        "inventory_packages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("version", sa.String(4096), nullable=False),
        sa.Column("arch", sa.String(4096), nullable=True),
        sa.Column("source_name", sa.String(1024), nullable=True),
        sa.Column("source_version", sa.String(4096), nullable=True),
        sa.Column("manager", sa.String(32), nullable=False),
        sa.Column("ecosystem", sa.String(4096), nullable=True),
        sa.Column("purl", sa.String(4096), nullable=True),
    )
    op.create_index("ix_inventory_packages_name", "inventory_packages", ["name"])
    op.create_index("ix_inventory_packages_source_name", "inventory_packages", ["source_name"])
    op.create_table(
        "inventory_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("basename", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("kinds", sa.String(255), nullable=False),
    )
    for column in ("basename", "sha256", "sha1", "md5"):
        op.create_index(f"ix_inventory_files_{column}", "inventory_files", [column])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "campaign_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(255), nullable=False),
        sa.Column("affected", sa.Integer(), nullable=False),
        sa.Column("newly_affected", sa.Integer(), nullable=False),
    )
    op.create_index("ix_campaign_runs_campaign_id", "campaign_runs", ["campaign_id"])
    op.create_table(
        "campaign_run_versions",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("campaign_runs.id"), primary_key=True),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), primary_key=True),
    )
    # Filled by the notification step: whom a campaign told about which version, once each.
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("endorser_email", sa.String(512), nullable=False),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.UniqueConstraint("campaign_id", "endorser_email", "version_id",
                            name="uq_notifications_campaign_email_version"),
    )


def downgrade() -> None:
    for table in ("notifications", "campaign_run_versions", "campaign_runs", "campaigns",
                  "inventory_files", "inventory_packages", "inventories"):
        op.drop_table(table)
