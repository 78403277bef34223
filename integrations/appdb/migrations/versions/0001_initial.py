"""The first catalogue schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integrations.appdb.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endorsers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dn", sa.String(1024), nullable=False, unique=True),
        sa.Column("ca", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("email", sa.String(512), nullable=False),
    )
    op.create_table(
        "vos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("min_level", sa.String(64), nullable=True),
    )
    op.create_table(
        "appliances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("identifier", sa.String(255), nullable=False, unique=True),
        sa.Column("title", sa.String(1024), nullable=False),
        sa.Column("endorser_id", sa.Integer(), sa.ForeignKey("endorsers.id"), nullable=True),
        sa.Column("source_uri", sa.String(2048), nullable=False),
        sa.Column("list_version", sa.String(255), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("identifier", sa.String(255), nullable=False, unique=True),
        sa.Column("appliance_id", sa.Integer(), sa.ForeignKey("appliances.id"), nullable=True),
        sa.Column("vo_id", sa.Integer(), sa.ForeignKey("vos.id"), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_images_vo_id", "images", ["vo_id"])
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("title", sa.String(1024), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("hypervisor", sa.String(255), nullable=False),
        sa.Column("arch", sa.String(64), nullable=False),
        sa.Column("os", sa.String(255), nullable=False),
        sa.Column("osname", sa.String(255), nullable=False),
        sa.Column("osversion", sa.String(255), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("image_id", "sha512", name="uq_versions_image_sha512"),
    )
    op.create_index("ix_versions_image_id", "versions", ["image_id"])
    op.create_index("ix_versions_sha512", "versions", ["sha512"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("report_id", sa.String(128), nullable=False, unique=True),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("level", sa.String(64), nullable=False),
        sa.Column("levels", sa.Text(), nullable=False),
        sa.Column("ruleset_version", sa.String(255), nullable=False),
        sa.Column("levels_version", sa.String(255), nullable=False),
        sa.Column("tool_version", sa.String(255), nullable=False),
        sa.Column("issued", UTCDateTime(), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("received", UTCDateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_reports_version_issued", "reports", ["version_id", "issued"])
    op.create_table(
        "suspensions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("who", sa.String(255), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("lifted_by", sa.String(255), nullable=True),
        sa.Column("lifted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_suspensions_image_id", "suspensions", ["image_id"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_log", "tokens", "suspensions", "reports", "versions", "images",
                  "appliances", "vos", "endorsers"):
        op.drop_table(table)
