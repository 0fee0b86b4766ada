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
    feature_count: Mapped[int] = mapped_column(BigInteger, server_default="0")
    geometry_type: Mapped[str | None] = mapped_column(String(32))
    bbox: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    source_crs: Mapped[str | None] = mapped_column(Text)
    source_path: Mapped[str | None] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    warnings: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
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
