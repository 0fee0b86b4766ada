"""OGC APIs: layer revisions for tile caches, per-layer styles and tile properties, edits.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "layers",
        sa.Column("revision", sa.Integer(), server_default="0", nullable=False),
        schema="portal",
    )
    op.add_column(
        "layers",
        sa.Column("style", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="portal",
    )
    op.add_column(
        "layers",
        sa.Column("tile_properties", postgresql.ARRAY(sa.Text()), nullable=True),
        schema="portal",
    )
    op.create_table(
        "feature_versions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("layer_id", sa.String(length=40), nullable=False),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        sa.Column("layer_version", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("properties", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("geometry", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "operation IN ('create', 'replace', 'update', 'delete')",
            name=op.f("ck_feature_versions_operation_known"),
        ),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["portal.layers.id"],
            name=op.f("fk_feature_versions_layer_id_layers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["portal.users.id"],
            name=op.f("fk_feature_versions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_versions")),
        schema="portal",
    )
    op.create_index(
        "ix_feature_versions_layer_fid",
        "feature_versions",
        ["layer_id", "fid", "id"],
        unique=False,
        schema="portal",
    )


def downgrade() -> None:
    op.drop_index("ix_feature_versions_layer_fid", table_name="feature_versions", schema="portal")
    op.drop_table("feature_versions", schema="portal")
    op.drop_column("layers", "tile_properties", schema="portal")
    op.drop_column("layers", "style", schema="portal")
    op.drop_column("layers", "revision", schema="portal")
