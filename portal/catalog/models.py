"""Catalog tables: departments, groups, datasets, their tags, shares, resources and history."""

import uuid
from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.database import Base


class Department(Base):
    """A city department (課/局): owns datasets and layers (a CKAN organization)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Group(Base):
    """A dataset category (CKAN group): the 17 e-Stat categories."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str | None] = mapped_column(Text)


class Dataset(Base):
    """A dataset (CKAN package): metadata, visibility and its search document."""

    __tablename__ = "datasets"
    __table_args__ = (
        CheckConstraint("name ~ '^[a-z0-9_-]{2,100}$'", name="name_slug"),
        CheckConstraint(
            "visibility IN ('public', 'internal', 'department')", name="visibility_known"
        ),
        CheckConstraint("state IN ('active', 'deleted')", name="state_known"),
        Index("ix_datasets_search_vector", "search_vector", postgresql_using="gin"),
        Index(
            "ix_datasets_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        Index("ix_datasets_spatial", "spatial", postgresql_using="gist"),
        Index("ix_datasets_modified_at", "modified_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, server_default="")
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    visibility: Mapped[str] = mapped_column(String(16), server_default="public")
    state: Mapped[str] = mapped_column(String(16), server_default="active")
    license_id: Mapped[str] = mapped_column(String(64))
    source_url: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(Text)
    update_frequency: Mapped[str | None] = mapped_column(Text)
    temporal_start: Mapped[date | None] = mapped_column(Date)
    temporal_end: Mapped[date | None] = mapped_column(Date)
    spatial: Mapped[Any] = mapped_column(
        Geometry("POLYGON", srid=4326, spatial_index=False), nullable=True
    )
    contact_name: Mapped[str | None] = mapped_column(Text)
    contact_email: Mapped[str | None] = mapped_column(Text)
    standard_dataset: Mapped[str | None] = mapped_column(String(16))
    extras: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, server_default="")
    search_text: Mapped[str] = mapped_column(Text, server_default="")
    tag_list: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    public_formats: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


dataset_tags = Table(
    "dataset_tags",
    Base.metadata,
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(100), primary_key=True, index=True),
)

dataset_groups = Table(
    "dataset_groups",
    Base.metadata,
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True),
)

dataset_shares = Table(
    "dataset_shares",
    Base.metadata,
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "department_id",
        ForeignKey("departments.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    comment="Departments a department-visibility dataset is shared with.",
)


class Resource(Base):
    """A dataset's file, link or layer."""

    __tablename__ = "resources"
    __table_args__ = (
        CheckConstraint("kind IN ('file', 'url', 'layer')", name="kind_known"),
        CheckConstraint(
            "visibility IN ('public', 'internal', 'department')", name="visibility_known"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, server_default="0")
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    format: Mapped[str] = mapped_column(String(32), server_default="")
    kind: Mapped[str] = mapped_column(String(8))
    visibility: Mapped[str] = mapped_column(String(16), server_default="public")
    url: Mapped[str | None] = mapped_column(Text)
    storage_key: Mapped[str | None] = mapped_column(Text)
    layer_id: Mapped[str | None] = mapped_column(
        ForeignKey("layers.id", ondelete="SET NULL"), index=True
    )
    size: Mapped[int | None] = mapped_column(BigInteger)
    mimetype: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    quality: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class DatasetChange(Base):
    """One change to a dataset: who changed what, and when."""

    __tablename__ = "dataset_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
