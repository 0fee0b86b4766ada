"""Staff accounts: users, memberships, API tokens, web sessions and the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_site_admin", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        schema="portal",
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["portal.users.id"],
            name=op.f("fk_api_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_api_tokens_user_id"),
        "api_tokens",
        ["user_id"],
        unique=False,
        schema="portal",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column(
            "detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["portal.users.id"],
            name=op.f("fk_audit_log_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_audit_log_action"), "audit_log", ["action"], unique=False, schema="portal"
    )
    op.create_index(
        op.f("ix_portal_audit_log_actor_user_id"),
        "audit_log",
        ["actor_user_id"],
        unique=False,
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_audit_log_at"), "audit_log", ["at"], unique=False, schema="portal"
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "role IN ('viewer', 'editor', 'admin')", name=op.f("ck_memberships_role_known")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["portal.departments.id"],
            name=op.f("fk_memberships_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["portal.users.id"],
            name=op.f("fk_memberships_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "department_id", name=op.f("pk_memberships")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_memberships_department_id"),
        "memberships",
        ["department_id"],
        unique=False,
        schema="portal",
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["portal.users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        schema="portal",
    )
    op.create_index(
        op.f("ix_portal_web_sessions_user_id"),
        "web_sessions",
        ["user_id"],
        unique=False,
        schema="portal",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_portal_web_sessions_user_id"), table_name="web_sessions", schema="portal"
    )
    op.drop_table("web_sessions", schema="portal")
    op.drop_index(
        op.f("ix_portal_memberships_department_id"), table_name="memberships", schema="portal"
    )
    op.drop_table("memberships", schema="portal")
    op.drop_index(op.f("ix_portal_audit_log_at"), table_name="audit_log", schema="portal")
    op.drop_index(
        op.f("ix_portal_audit_log_actor_user_id"), table_name="audit_log", schema="portal"
    )
    op.drop_index(op.f("ix_portal_audit_log_action"), table_name="audit_log", schema="portal")
    op.drop_table("audit_log", schema="portal")
    op.drop_index(op.f("ix_portal_api_tokens_user_id"), table_name="api_tokens", schema="portal")
    op.drop_table("api_tokens", schema="portal")
    op.drop_table("users", schema="portal")
