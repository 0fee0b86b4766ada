"""Harvesters: sources, the job queue, per-object results and per-source records.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "harvest_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column(
            "default_visibility", sa.String(length=16), server_default="public", nullable=False
        ),
        sa.Column("schedule", sa.String(length=100), server_default="manual", nullable=False),
        sa.Column(
            "config", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("allow_private_network", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "default_visibility IN ('public', 'internal', 'department')",
            name=op.f("ck_harvest_sources_visibility_known"),
        ),
        sa.CheckConstraint(
            "name ~ '^[a-z0-9_-]{2,100}$'", name=op.f("ck_harvest_sources_name_slug")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["portal.departments.id"],
            name=op.f("fk_harvest_sources_department_id_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvest_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_harvest_sources_name")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_harvest_sources_department_id"),
        "harvest_sources",
        ["department_id"],
        unique=False,
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_harvest_sources_next_run_at"),
        "harvest_sources",
        ["next_run_at"],
        unique=False,
        schema="portal",
    )
    op.create_table(
        "harvest_jobs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("trigger", sa.String(length=16), server_default="manual", nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), server_default="3600", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "stats", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'partial', 'failed', 'timed_out', "
            "'cancelled')",
            name=op.f("ck_harvest_jobs_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["portal.harvest_sources.id"],
            name=op.f("fk_harvest_jobs_source_id_harvest_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvest_jobs")),
        schema="portal",
    )
    op.create_index(
        "ix_harvest_jobs_status_created",
        "harvest_jobs",
        ["status", "created_at"],
        unique=False,
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_harvest_jobs_source_id"),
        "harvest_jobs",
        ["source_id"],
        unique=False,
        schema="portal",
    )
    op.create_index(
        "uq_harvest_jobs_active_source",
        "harvest_jobs",
        ["source_id"],
        unique=True,
        schema="portal",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_table(
        "harvest_records",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=False),
        sa.Column("dataset_id", sa.UUID(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("remote_modified", sa.Text(), nullable=True),
        sa.Column("last_job_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal.datasets.id"],
            name=op.f("fk_harvest_records_dataset_id_datasets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["portal.harvest_sources.id"],
            name=op.f("fk_harvest_records_source_id_harvest_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "remote_id", name=op.f("pk_harvest_records")),
        schema="portal",
    )
    op.create_table(
        "harvest_objects",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dataset_id", sa.UUID(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "warnings", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('created', 'updated', 'unchanged', 'deleted', 'failed')",
            name=op.f("ck_harvest_objects_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["portal.datasets.id"],
            name=op.f("fk_harvest_objects_dataset_id_datasets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["portal.harvest_jobs.id"],
            name=op.f("fk_harvest_objects_job_id_harvest_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvest_objects")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_harvest_objects_job_id"),
        "harvest_objects",
        ["job_id"],
        unique=False,
        schema="portal",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_portal_harvest_objects_job_id"), table_name="harvest_objects", schema="portal"
    )
    op.drop_table("harvest_objects", schema="portal")
    op.drop_table("harvest_records", schema="portal")
    op.drop_index(
        "uq_harvest_jobs_active_source",
        table_name="harvest_jobs",
        schema="portal",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_index(
        op.f("ix_portal_harvest_jobs_source_id"), table_name="harvest_jobs", schema="portal"
    )
    op.drop_index("ix_harvest_jobs_status_created", table_name="harvest_jobs", schema="portal")
    op.drop_table("harvest_jobs", schema="portal")
    op.drop_index(
        op.f("ix_portal_harvest_sources_next_run_at"), table_name="harvest_sources", schema="portal"
    )
    op.drop_index(
        op.f("ix_portal_harvest_sources_department_id"),
        table_name="harvest_sources",
        schema="portal",
    )
    op.drop_table("harvest_sources", schema="portal")
