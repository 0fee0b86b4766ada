"""Foundation: PostGIS, the portal and layers schemas, departments and the layer registry.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE SCHEMA IF NOT EXISTS portal")
    op.execute("CREATE SCHEMA IF NOT EXISTS layers")
    op.execute("CREATE SEQUENCE portal.layer_table_seq")
    op.create_table(
        "departments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_departments"),
        sa.UniqueConstraint("slug", name="uq_departments_slug"),
        schema="portal",
    )
    op.create_table(
        "layers",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("visibility", sa.String(16), server_default="public", nullable=False),
        sa.Column("table_name", sa.String(63), nullable=True),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("feature_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("geometry_type", sa.String(32), nullable=True),
        sa.Column("bbox", postgresql.ARRAY(sa.Float()), nullable=True),
        sa.Column("source_crs", sa.Text(), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("source_sha256", sa.String(64), nullable=True),
        sa.Column("columns", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("warnings", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("id ~ '^[a-z][a-z0-9_]{0,39}$'", name="ck_layers_id_slug"),
        sa.CheckConstraint(
            "visibility IN ('public', 'internal', 'department')",
            name="ck_layers_visibility_known",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["portal.departments.id"],
            name="fk_layers_department_id_departments",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_layers"),
        schema="portal",
    )
    op.create_index("ix_portal_layers_department_id", "layers", ["department_id"], schema="portal")
    op.create_table(
        "layer_shares",
        sa.Column("layer_id", sa.String(40), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["portal.layers.id"],
            name="fk_layer_shares_layer_id_layers",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["portal.departments.id"],
            name="fk_layer_shares_department_id_departments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("layer_id", "department_id", name="pk_layer_shares"),
        schema="portal",
        comment="Departments a department-visibility layer is shared with.",
    )
    op.create_index(
        "ix_portal_layer_shares_department_id",
        "layer_shares",
        ["department_id"],
        schema="portal",
    )


def downgrade() -> None:
    op.drop_table("layer_shares", schema="portal")
    op.drop_table("layers", schema="portal")
    op.drop_table("departments", schema="portal")
    op.execute("DROP SEQUENCE IF EXISTS portal.layer_table_seq")
    op.execute("DROP SCHEMA IF EXISTS layers CASCADE")
