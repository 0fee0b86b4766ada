"""Harvest tables: sources, jobs (the queue), per-object results, and what each source gave."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.database import Base

JOB_STATES = ("queued", "running", "succeeded", "partial", "failed", "timed_out", "cancelled")
OBJECT_STATES = ("created", "updated", "unchanged", "deleted", "failed")


class HarvestSource(Base):
    """Where a department's data comes from, and how often to fetch it."""

    __tablename__ = "harvest_sources"
    __table_args__ = (
        CheckConstraint("name ~ '^[a-z0-9_-]{2,100}$'", name="name_slug"),
        CheckConstraint(
            "default_visibility IN ('public', 'internal', 'department')", name="visibility_known"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    default_visibility: Mapped[str] = mapped_column(String(16), server_default="public")
    schedule: Mapped[str] = mapped_column(String(100), server_default="manual")
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    allow_private_network: Mapped[bool] = mapped_column(Boolean, server_default="false")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HarvestJob(Base):
    """One run of a source; queued rows are the work queue (taken with SKIP LOCKED)."""

    __tablename__ = "harvest_jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'partial', 'failed', 'timed_out', "
            "'cancelled')",
            name="status_known",
        ),
        # At most one queued or running job per source, so schedules never pile up.
        Index(
            "uq_harvest_jobs_active_source",
            "source_id",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_harvest_jobs_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("harvest_sources.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    trigger: Mapped[str] = mapped_column(String(16), server_default="manual")
    stage: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    timeout_seconds: Mapped[int] = mapped_column(Integer, server_default="3600")
    error: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class HarvestObject(Base):
    """What happened to one remote object in one job."""

    __tablename__ = "harvest_objects"
    __table_args__ = (
        CheckConstraint(
            "status IN ('created', 'updated', 'unchanged', 'deleted', 'failed')",
            name="status_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("harvest_jobs.id", ondelete="CASCADE"), index=True
    )
    remote_id: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("datasets.id", ondelete="SET NULL")
    )
    message: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HarvestRecord(Base):
    """The last version of each remote object a source gave, for incremental harvests."""

    __tablename__ = "harvest_records"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("harvest_sources.id", ondelete="CASCADE"), primary_key=True
    )
    remote_id: Mapped[str] = mapped_column(Text, primary_key=True)
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("datasets.id", ondelete="SET NULL")
    )
    content_hash: Mapped[str | None] = mapped_column(String(64))
    remote_modified: Mapped[str | None] = mapped_column(Text)
    last_job_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
