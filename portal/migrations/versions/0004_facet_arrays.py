"""Facet arrays on datasets: their tags and the formats of their public resources.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Facets unnest these arrays from rows the search has already matched, instead of
    # joining every tag and resource of the catalog.
    op.add_column(
        "datasets",
        sa.Column("tag_list", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        schema="portal",
    )
    op.add_column(
        "datasets",
        sa.Column(
            "public_formats", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        schema="portal",
    )
    op.execute(
        "UPDATE portal.datasets d SET tag_list = coalesce((SELECT array_agg(tag ORDER BY tag) "
        "FROM portal.dataset_tags t WHERE t.dataset_id = d.id), '{}')"
    )
    op.execute(
        "UPDATE portal.datasets d SET public_formats = coalesce((SELECT array_agg(DISTINCT "
        "upper(r.format)) FROM portal.resources r LEFT JOIN portal.layers l ON l.id = r.layer_id "
        "WHERE r.dataset_id = d.id AND r.format <> '' AND r.visibility = 'public' "
        "AND (r.layer_id IS NULL OR l.visibility = 'public')), '{}')"
    )


def downgrade() -> None:
    op.drop_column("datasets", "public_formats", schema="portal")
    op.drop_column("datasets", "tag_list", schema="portal")
