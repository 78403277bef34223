"""Each VO's image list gets a stable identifier of its own (``dc:identifier``), no longer
derived from the URL the catalogue was reached at.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vos") as batch:
        batch.add_column(sa.Column("list_uuid", sa.String(36), nullable=True))
    conn = op.get_bind()
    vos = sa.table("vos", sa.column("id", sa.Integer()), sa.column("list_uuid", sa.String(36)))
    for (vo_id,) in conn.execute(sa.select(vos.c.id)).all():
        conn.execute(vos.update().where(vos.c.id == vo_id).values(list_uuid=str(uuid.uuid4())))
    with op.batch_alter_table("vos") as batch:
        batch.alter_column("list_uuid", existing_type=sa.String(36), nullable=False)
        batch.create_unique_constraint("uq_vos_list_uuid", ["list_uuid"])


def downgrade() -> None:
    with op.batch_alter_table("vos") as batch:
        batch.drop_constraint("uq_vos_list_uuid", type_="unique")
        batch.drop_column("list_uuid")
