"""Catalog: groups (the 17 e-Stat categories), datasets, tags, shares, resources, history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here so that replaying this revision always seeds the same groups.
ESTAT_GROUPS = [
    ("land-weather", "国土・気象", "Land and weather"),
    ("population-households", "人口・世帯", "Population and households"),
    ("labour-wages", "労働・賃金", "Labour and wages"),
    ("agriculture-forestry-fisheries", "農林水産業", "Agriculture, forestry and fisheries"),
    ("mining-manufacturing", "鉱工業", "Mining and manufacturing"),
    ("commerce-services", "商業・サービス業", "Commerce and services"),
    ("economy-finance", "企業・家計・経済", "Businesses, households and economy"),
    ("housing-land-construction", "住宅・土地・建設", "Housing, land and construction"),
    ("energy-water", "エネルギー・水", "Energy and water"),
    ("transport-tourism", "運輸・観光", "Transport and tourism"),
    ("ict-science", "情報通信・科学技術", "ICT, science and technology"),
    (
        "education-culture-sports",
        "教育・文化・スポーツ・生活",
        "Education, culture, sports and life",
    ),
    ("government-finance", "行財政", "Government and public finance"),
    ("justice-safety-environment", "司法・安全・環境", "Justice, safety and environment"),
    ("social-security-health", "社会保障・衛生", "Social security and health"),
    ("international", "国際", "International"),
    ("other", "その他", "Other"),
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    groups = op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_groups_name")),
        schema="portal",
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("visibility", sa.String(length=16), server_default="public", nullable=False),
        sa.Column("state", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("license_id", sa.String(length=64), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("update_frequency", sa.Text(), nullable=True),
        sa.Column("temporal_start", sa.Date(), nullable=True),
        sa.Column("temporal_end", sa.Date(), nullable=True),
        sa.Column(
            "spatial",
            geoalchemy2.types.Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("contact_name", sa.Text(), nullable=True),
        sa.Column("contact_email", sa.Text(), nullable=True),
        sa.Column("standard_dataset", sa.String(length=16), nullable=True),
        sa.Column(
            "extras", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("search_vector", postgresql.TSVECTOR(), server_default="", nullable=False),
        sa.Column("search_text", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "modified_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("name ~ '^[a-z0-9_-]{2,100}$'", name=op.f("ck_datasets_name_slug")),
        sa.CheckConstraint("state IN ('active', 'deleted')", name=op.f("ck_datasets_state_known")),
        sa.CheckConstraint(
            "visibility IN ('public', 'internal', 'department')",
            name=op.f("ck_datasets_visibility_known"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["portal.departments.id"],
            name=op.f("fk_datasets_department_id_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
        schema="portal",
    )
    op.create_index(
        "ix_datasets_modified_at", "datasets", ["modified_at"], unique=False, schema="portal"
    )
    op.create_index(
        "ix_datasets_search_text_trgm",
        "datasets",
        ["search_text"],
        unique=False,
        schema="portal",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_datasets_search_vector",
        "datasets",
        ["search_vector"],
        unique=False,
        schema="portal",
        postgresql_using="gin",
    )
    op.create_index(
        "ix_datasets_spatial",
        "datasets",
        ["spatial"],
        unique=False,
        schema="portal",
        postgresql_using="gist",
    )
    op.create_index(
        op.f("ix_portal_datasets_department_id"),
        "datasets",
        ["department_id"],
        unique=False,
        schema="portal",
    )
    op.create_table(
        "dataset_changes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dataset_id", sa.UUID(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "changes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["portal.users.id"],
            name=op.f("fk_dataset_changes_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal.datasets.id"],
            name=op.f("fk_dataset_changes_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_changes")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_dataset_changes_dataset_id"),
        "dataset_changes",
        ["dataset_id"],
        unique=False,
        schema="portal",
    )
    op.create_table(
        "dataset_groups",
        sa.Column("dataset_id", sa.UUID(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal.datasets.id"],
            name=op.f("fk_dataset_groups_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["portal.groups.id"],
            name=op.f("fk_dataset_groups_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "group_id", name=op.f("pk_dataset_groups")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_dataset_groups_group_id"),
        "dataset_groups",
        ["group_id"],
        unique=False,
        schema="portal",
    )
    op.create_table(
        "dataset_shares",
        sa.Column("dataset_id", sa.UUID(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal.datasets.id"],
            name=op.f("fk_dataset_shares_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["portal.departments.id"],
            name=op.f("fk_dataset_shares_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "department_id", name=op.f("pk_dataset_shares")),
        schema="portal",
        comment="Departments a department-visibility dataset is shared with.",
    )
    op.create_index(
        op.f("ix_portal_dataset_shares_department_id"),
        "dataset_shares",
        ["department_id"],
        unique=False,
        schema="portal",
    )
    op.create_table(
        "dataset_tags",
        sa.Column("dataset_id", sa.UUID(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal.datasets.id"],
            name=op.f("fk_dataset_tags_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "tag", name=op.f("pk_dataset_tags")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_dataset_tags_tag"), "dataset_tags", ["tag"], unique=False, schema="portal"
    )
    op.create_table(
        "resources",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("dataset_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("format", sa.String(length=32), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("visibility", sa.String(length=16), server_default="public", nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("storage_key", sa.Text(), nullable=True),
        sa.Column("layer_id", sa.String(length=40), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mimetype", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "quality", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "modified_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('file', 'url', 'layer')", name=op.f("ck_resources_kind_known")
        ),
        sa.CheckConstraint(
            "visibility IN ('public', 'internal', 'department')",
            name=op.f("ck_resources_visibility_known"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal.datasets.id"],
            name=op.f("fk_resources_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["portal.layers.id"],
            name=op.f("fk_resources_layer_id_layers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_resources_dataset_id"),
        "resources",
        ["dataset_id"],
        unique=False,
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_resources_layer_id"),
        "resources",
        ["layer_id"],
        unique=False,
        schema="portal",
    )
    op.bulk_insert(groups, [{"name": n, "title": t, "title_en": e} for n, t, e in ESTAT_GROUPS])


def downgrade() -> None:
    op.drop_index(op.f("ix_portal_resources_layer_id"), table_name="resources", schema="portal")
    op.drop_index(op.f("ix_portal_resources_dataset_id"), table_name="resources", schema="portal")
    op.drop_table("resources", schema="portal")
    op.drop_index(op.f("ix_portal_dataset_tags_tag"), table_name="dataset_tags", schema="portal")
    op.drop_table("dataset_tags", schema="portal")
    op.drop_index(
        op.f("ix_portal_dataset_shares_department_id"), table_name="dataset_shares", schema="portal"
    )
    op.drop_table("dataset_shares", schema="portal")
    op.drop_index(
        op.f("ix_portal_dataset_groups_group_id"), table_name="dataset_groups", schema="portal"
    )
    op.drop_table("dataset_groups", schema="portal")
    op.drop_index(
        op.f("ix_portal_dataset_changes_dataset_id"), table_name="dataset_changes", schema="portal"
    )
    op.drop_table("dataset_changes", schema="portal")
    op.drop_index(op.f("ix_portal_datasets_department_id"), table_name="datasets", schema="portal")
    op.drop_index(
        "ix_datasets_spatial", table_name="datasets", schema="portal", postgresql_using="gist"
    )
    op.drop_index(
        "ix_datasets_search_vector", table_name="datasets", schema="portal", postgresql_using="gin"
    )
    op.drop_index(
        "ix_datasets_search_text_trgm",
        table_name="datasets",
        schema="portal",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_index("ix_datasets_modified_at", table_name="datasets", schema="portal")
    op.drop_table("datasets", schema="portal")
    op.drop_table("groups", schema="portal")
