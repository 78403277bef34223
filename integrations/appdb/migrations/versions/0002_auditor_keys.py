"""Auditors' signing keys, and who signed each report.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from integrations.appdb.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditor_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("auditor", sa.String(255), nullable=False),
        sa.Column("key_id", sa.String(80), nullable=False, unique=True),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_auditor_keys_auditor", "auditor_keys", ["auditor"])
    # Reports stored before signatures existed keep NULL: nobody vouched for them.
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("signer", sa.String(255), nullable=True))
        batch.add_column(sa.Column("signer_key", sa.String(80), nullable=True))
        batch.add_column(sa.Column("signature", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("signature")
        batch.drop_column("signer_key")
        batch.drop_column("signer")
    op.drop_index("ix_auditor_keys_auditor", "auditor_keys")
    op.drop_table("auditor_keys")
