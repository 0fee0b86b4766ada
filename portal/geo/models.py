"""The layer registry: one row per layer, pointing at its current table version."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.database import Base

LAYER_TABLE_SEQUENCE = Sequence("layer_table_seq", metadata=Base.metadata)


class Layer(Base):
    """A layer (or non-spatial table) whose rows live in the `layers` schema."""

    __tablename__ = "layers"
    __table_args__ = (
        CheckConstraint("id ~ '^[a-z][a-z0-9_]{0,39}$'", name="id_slug"),
        CheckConstraint(
            "visibility IN ('public', 'internal', 'department')", name="visibility_known"
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str | None] = mapped_column(Text)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    visibility: Mapped[str] = mapped_column(String(16), server_default="public")
    table_name: Mapped[str | None] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer, server_default="0")
    revision: Mapped[int] = mapped_column(Integer, server_default="0")
    feature_count: Mapped[int] = mapped_column(BigInteger, server_default="0")
    geometry_type: Mapped[str | None] = mapped_column(String(32))
    bbox: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    source_crs: Mapped[str | None] = mapped_column(Text)
    source_path: Mapped[str | None] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    warnings: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    style: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    tile_properties: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    loaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


layer_shares = Table(
    "layer_shares",
    Base.metadata,
    Column("layer_id", ForeignKey("layers.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "department_id",
        ForeignKey("departments.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    comment="Departments a department-visibility layer is shared with.",
)


class FeatureVersion(Base):
    """One edit of one feature through OGC API Features Part 4: what it became, who, when."""

    __tablename__ = "feature_versions"
    __table_args__ = (
        CheckConstraint(
            "operation IN ('create', 'replace', 'update', 'delete')", name="operation_known"
        ),
        Index("ix_feature_versions_layer_fid", "layer_id", "fid", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    layer_id: Mapped[str] = mapped_column(ForeignKey("layers.id", ondelete="CASCADE"))
    fid: Mapped[int] = mapped_column(BigInteger)
    layer_version: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(16))
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    geometry: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    actor: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
