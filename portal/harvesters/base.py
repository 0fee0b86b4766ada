"""The harvester plugin interface: validate_config, gather, fetch, import."""

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.core.errors import HarvestFailed
from portal.core.principal import Visibility
from portal.core.settings import Settings
from portal.core.storage import Storage
from portal.geo.csv_points import PointColumns


@dataclass(frozen=True)
class SourceSpec:
    """A harvest source as the harvester sees it."""

    id: int
    name: str
    title: str
    kind: str
    url: str
    department: str
    default_visibility: Visibility
    config: dict[str, Any]
    allow_private_network: bool


@dataclass
class RemoteObject:
    """Something a source offers: an identifier, its modification mark, and kind data."""

    remote_id: str
    modified: str | None = None
    payload: Any = None


@dataclass
class HarvestedFile:
    """A file fetched to the job's folder, and how to load it."""

    path: Path
    name: str
    format: str = ""
    load: bool = True
    store: bool = True
    source_layer: str | None = None
    encoding: str | None = None
    source_crs: str | None = None
    title: str | None = None
    layer_id: str | None = None
    point_columns: PointColumns | None = None


@dataclass
class HarvestedLink:
    """A resource kept as a link rather than copied."""

    url: str
    name: str
    format: str = ""
    description: str = ""


@dataclass
class HarvestedDataset:
    """What a fetched object becomes in the catalog."""

    name: str
    title: str
    title_en: str | None = None
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    license_id: str | None = None
    source_url: str | None = None
    update_frequency: str | None = None
    temporal_start: date | None = None
    temporal_end: date | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    standard_dataset: str | None = None
    visibility: Visibility | None = None
    shared_with: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class FetchedObject:
    """A remote object with its content in hand, ready to import."""

    remote: RemoteObject
    content_hash: str
    dataset: HarvestedDataset
    files: list[HarvestedFile] = field(default_factory=list)
    links: list[HarvestedLink] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class HarvestContext:
    """What a harvester may use during one job."""

    source: SourceSpec
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage
    workdir: Path
    job_id: int | None
    deadline: float
    log: Callable[[str], None] = lambda message: None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def check_time(self) -> None:
        """Stop the job when its time is up or it was cancelled."""
        if self.cancelled.is_set():
            raise HarvestFailed("the job was cancelled")
        if time.monotonic() > self.deadline:
            raise JobTimedOut("the job ran past its time limit and was stopped")


class JobTimedOut(HarvestFailed):
    """A job ran past its timeout."""


class Harvester(ABC):
    """One kind of source (CKAN, DCAT, a folder, OGC API Features, …)."""

    kind: ClassVar[str]
    title: ClassVar[str]

    @abstractmethod
    def validate_config(self, url: str, config: dict[str, Any]) -> dict[str, Any]:
        """Check a source's URL and settings; return the cleaned config or raise InvalidInput."""

    @abstractmethod
    def gather(self, ctx: HarvestContext) -> Iterable[RemoteObject]:
        """List what the source offers now (cheaply: identifiers and modification marks)."""

    @abstractmethod
    def fetch(self, ctx: HarvestContext, remote: RemoteObject) -> FetchedObject:
        """Get one object's metadata and content into the job folder."""

    def import_object(self, ctx: HarvestContext, fetched: FetchedObject) -> "ImportResult":
        """Publish a fetched object in the catalog and PostGIS (shared by every kind)."""
        from portal.harvesters.publish import publish_fetched

        result = publish_fetched(ctx, fetched)
        result.warnings = [*fetched.warnings, *result.warnings]
        return result


@dataclass
class ImportResult:
    """The outcome of importing one object."""

    status: str
    dataset_id: Any = None
    warnings: list[str] = field(default_factory=list)
