"""The `directory` harvester: a department drop folder, local or mounted.

Each file becomes a dataset: CSV, XLSX, GeoJSON, KML and GeoPackage files (every layer),
Shapefile sets (their parts grouped by stem) and zips of such files. Metadata comes from
sidecars or the file name (see `directory_meta`). The source URL is the folder's absolute
path or a `file://` URL. Config: recursive (default true), include/exclude (globs on the
relative path or the file name), max_file_bytes (default and ceiling: the portal's upload
limit), source_crs (forced for every file), zone (the JGD2011 plane rectangular zone of
files that do not say their CRS: X/Y CSVs and Shapefiles without .prj), encoding,
name_prefix (for names derived from file names), delete_missing (default true).
"""

import codecs
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select

from portal.catalog.models import Dataset, Group
from portal.core.database import session_scope
from portal.core.errors import HarvestFailed, InvalidInput, PayloadTooLarge
from portal.geo.archives import format_bytes
from portal.geo.crs import parse_crs
from portal.geo.csv_points import PointColumns
from portal.harvesters.base import (
    FetchedObject,
    HarvestContext,
    HarvestedFile,
    Harvester,
    RemoteObject,
)
from portal.harvesters.kinds import directory_meta as meta
from portal.harvesters.kinds.directory_files import LoadSettings, copy_parts, harvested_files
from portal.harvesters.kinds.directory_walk import Entry, walk
from portal.harvesters.models import HarvestRecord

PROTECTED = ("/proc", "/sys", "/dev", "/etc", "/boot", "/root", "/run", "/bin", "/sbin", "/usr")
_NAME = r"^[a-z0-9][a-z0-9_-]{0,40}$"


class DirectoryConfig(BaseModel):
    """The settings of a directory source."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    recursive: bool = True
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    max_file_bytes: int | None = Field(default=None, ge=1)
    source_crs: str | None = None
    zone: int | None = Field(default=None, ge=1, le=19)
    encoding: str | None = None
    name_prefix: str | None = Field(default=None, pattern=_NAME)
    delete_missing: bool = True

    @field_validator("source_crs")
    @classmethod
    def _crs(cls, value: str | None) -> str | None:
        if value:
            parse_crs(value, file_name="source_crs")
        return value or None

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        return _check_encoding(value)

    def fingerprint(self) -> str:
        """The settings that change how files read; a change re-reads every file."""
        return json.dumps([self.source_crs, self.zone, self.encoding])


class DirectoryHarvester(Harvester):
    """Harvest a folder of files dropped by a department."""

    kind = "directory"
    title = "フォルダ（部署の共有フォルダ）"

    def validate_config(self, url: str, config: dict[str, Any]) -> dict[str, Any]:
        """Check that the folder exists and is readable, and the settings make sense."""
        check_folder(folder_path(url))
        return parse_config(config).model_dump(exclude_defaults=True)

    def gather(self, ctx: HarvestContext) -> Iterable[RemoteObject]:
        """List the folder's datasets with a cheap mark (sizes and mtimes) for each."""
        config = parse_config(ctx.source.config)
        root = check_folder(folder_path(ctx.source.url)).resolve()
        entries = walk(
            root, recursive=config.recursive, include=config.include, exclude=config.exclude
        )
        if not entries and config.delete_missing:
            _refuse_empty_folder(ctx, root)
        ctx.log(f"{len(entries)} datasets found in {root}")
        return [
            RemoteObject(e.remote_id, modified=e.signature(config.fingerprint()), payload=e)
            for e in entries
        ]

    def fetch(self, ctx: HarvestContext, remote: RemoteObject) -> FetchedObject:
        """Copy one entry's files to the job folder, read its sidecar, and list its layers."""
        entry: Entry = remote.payload
        try:
            return self._fetch(ctx, remote, entry)
        except OSError as exc:
            name = Path(exc.filename).name if exc.filename else entry.primary.name
            raise HarvestFailed(
                f"{name} cannot be read ({exc.strerror or exc}); check that it is still in the "
                "folder and that the portal may read it"
            ) from exc

    def _fetch(self, ctx: HarvestContext, remote: RemoteObject, entry: Entry) -> FetchedObject:
        config = parse_config(ctx.source.config)
        portal_limit = ctx.settings.max_upload_bytes
        limit = min(config.max_file_bytes or portal_limit, portal_limit)
        _check_sizes(entry, limit, "max_file_bytes" if limit < portal_limit else "upload limit")
        sidecar, extras, sidecar_bytes = meta.entry_sidecar(
            entry.sidecars, entry.primary.name, smartmap=entry.smartmap
        )
        _check_groups(ctx, sidecar.groups or [])
        work = _fresh_workdir(ctx, entry)
        copies, digest = copy_parts(entry, work)
        dataset = meta.dataset_from(
            sidecar,
            stem=entry.primary.name.rsplit(".", 1)[0],
            remote_id=entry.remote_id,
            source_name=ctx.source.name,
            name_prefix=config.name_prefix,
            extras=extras,
        )
        settings = LoadSettings(
            encoding=sidecar.encoding or config.encoding,
            source_crs=sidecar.source_crs,
            zone=sidecar.zone or config.zone,
            point_columns=(
                PointColumns(sidecar.x_column, sidecar.y_column)
                if sidecar.x_column and sidecar.y_column
                else None
            ),
        )
        files = harvested_files(entry, copies, work, settings, dataset.title, limit)
        if sidecar.layer_id:
            _name_the_layer(entry, files, sidecar.layer_id)
        content = hashlib.sha256(digest + sidecar_bytes + config.fingerprint().encode())
        return FetchedObject(remote, content.hexdigest(), dataset, files)


def folder_path(url: str) -> Path:
    """The folder a source URL names: an absolute path or a file:// URL."""
    text = url.strip()
    if text.lower().startswith("file:"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(
                f"{url!r}: only local file:// URLs are accepted (mount the share on the server)"
            )
        text = unquote(parsed.path)
    path = Path(text)
    if not path.is_absolute():
        raise InvalidInput(f"{url!r}: give the folder's absolute path, such as /srv/drop/doboku")
    return path


def check_folder(path: Path) -> Path:
    """Refuse a folder that is missing, unreadable, or part of the operating system."""
    resolved = path.resolve()
    if resolved == Path("/") or any(resolved.is_relative_to(p) for p in PROTECTED):
        raise InvalidInput(f"{path}: system folders cannot be harvested; use a data folder")
    if not resolved.exists():
        raise InvalidInput(f"{path}: the folder does not exist (is the share mounted?)")
    if not resolved.is_dir():
        raise InvalidInput(f"{path}: this is a file, not a folder; give the folder it is in")
    if not os.access(resolved, os.R_OK | os.X_OK):
        raise InvalidInput(f"{path}: the portal may not read this folder (check its permissions)")
    return path


def parse_config(config: dict[str, Any]) -> DirectoryConfig:
    """Validate a directory source's config, naming the field that is wrong."""
    try:
        parsed = DirectoryConfig.model_validate(config)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise InvalidInput("directory source config: " + "; ".join(problems)) from exc
    if parsed.zone and parsed.source_crs:
        raise InvalidInput("directory source config: give zone or source_crs, not both")
    return parsed


def _check_encoding(value: str | None) -> str | None:
    if not value:
        return None
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown encoding {value!r} (use cp932, utf-8 or euc-jp)") from None
    return value


def _check_sizes(entry: Entry, limit: int, setting: str) -> None:
    """Refuse files over the limit from their size alone, before reading a byte."""
    sizes = {path: path.stat().st_size for path in entry.parts}
    for path, size in sizes.items():
        if size > limit:
            raise PayloadTooLarge(
                f"{path.name} is {format_bytes(size)}, over this source's limit of "
                f"{format_bytes(limit)} ({setting}); split the file, or ask an "
                "administrator to raise the limit"
            )
    if sum(sizes.values()) > limit:
        raise PayloadTooLarge(
            f"{entry.primary.name}: the parts total {format_bytes(sum(sizes.values()))}, "
            f"over this source's limit of {format_bytes(limit)} ({setting})"
        )


def _name_the_layer(entry: Entry, files: list[HarvestedFile], layer_id: str) -> None:
    """Give the entry's one layer the sidecar's layer_id; several layers cannot share it."""
    layers = [f for f in files if f.load]
    if len(layers) != 1:
        raise InvalidInput(
            f"{entry.primary.name}: layer_id {layer_id!r} names one layer, but the file holds "
            f"{len(layers)}; remove layer_id from its sidecar, or split the file"
        )
    layers[0].layer_id = layer_id


def _refuse_empty_folder(ctx: HarvestContext, root: Path) -> None:
    """Stop before withdrawing everything when the folder is suddenly empty.

    An unmounted share usually leaves an empty mount point behind; the next run after the
    share is back would otherwise recreate every dataset under new names.
    """
    if any(root.iterdir()):
        return
    with session_scope(ctx.sessions) as session:
        alive = session.execute(
            select(func.count())
            .select_from(HarvestRecord)
            .join(Dataset, Dataset.id == HarvestRecord.dataset_id)
            .where(HarvestRecord.source_id == ctx.source.id, Dataset.state == "active")
        ).scalar_one()
    if alive:
        raise HarvestFailed(
            f"{root} is empty, but {alive} datasets came from it; nothing was withdrawn. "
            "Check that the share is mounted; to withdraw them all, set delete_missing to false "
            "and delete the datasets, or remove the source"
        )


def _check_groups(ctx: HarvestContext, groups: list[str]) -> None:
    """Refuse unknown groups now, before any layer is loaded."""
    if not groups:
        return
    with session_scope(ctx.sessions) as session:
        known = set(session.execute(select(Group.name)).scalars())
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise InvalidInput(
            f"unknown group {unknown[0]!r} in the sidecar; use one of: {', '.join(sorted(known))}"
        )


def _fresh_workdir(ctx: HarvestContext, entry: Entry) -> Path:
    """A folder for this entry; the previous entry's copies go (objects run one by one)."""
    base = ctx.workdir / "directory"
    shutil.rmtree(base, ignore_errors=True)
    work = base / hashlib.sha1(entry.remote_id.encode()).hexdigest()[:12]
    work.mkdir(parents=True)
    return work
