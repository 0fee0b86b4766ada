"""Dataset metadata for the `directory` harvester: sidecars, or else the file name.

Sidecars, all optional; field by field, a file sidecar beats the folder's entry for the
file, which beats the folder's defaults, which beat config.yml, which beats the file name:

1. `<stem>.meta.yaml` (or `.meta.yml`, `.meta.json`) beside the file, e.g.
   `road_ledger.meta.yaml` for `road_ledger.shp`; its fields are at the top level.
2. A folder-level `meta.yaml` (or `meta.yml`, `meta.json`) with `files:` entries keyed by
   file name (`road_ledger.shp`) or stem (`road_ledger`), and `defaults:` for every file
   of that folder (not of subfolders)::

       defaults:
         license_id: cc-by-4.0
         tags: [防災]
       files:
         road_ledger.shp:
           title: 道路台帳
           title_en: Road ledger
           encoding: cp932
         survey_points.csv:
           zone: 2            # X座標/Y座標 are JGD2011 plane rectangular zone II
3. The layout some municipal repositories use: a folder with one data file, `config.yml`
   (its `name:` becomes the title) and `attributes.csv` (original_name,display_name: kept
   as the dataset's `column_labels` extra).

Fields: name (ASCII slug; used as given, without name_prefix), title, title_en, notes,
tags, groups, license_id, visibility (public/internal/department), shared_with
(department slugs a department-only dataset is shared with), update_frequency
(continual/daily/weekly/monthly/quarterly/annual/irregular), standard_dataset (A-01…A-17
or its slug), temporal_start, temporal_end (YYYY-MM-DD), contact_name, contact_email,
source_crs (forces the file's CRS, e.g. EPSG:2450), encoding (cp932, utf-8, euc-jp),
zone (1-19: JGD2011 plane rectangular zone for X/Y columns and .prj-less Shapefiles),
x_column/y_column (a CSV's survey X = northing and Y = easting columns, when they are not
named X座標/Y座標 or 緯度/経度; they take effect once the harvest core passes
HarvestedFile.point_columns to the loader, and fail the file clearly until then),
layer_id (the id of the file's layer, e.g. `roads`, for files with one layer; a layer
of another department or dataset is refused). Unknown fields fail the file with the list
of known ones.

Without a sidecar: title = the file's stem; name = its ASCII slug (with a short hash when
the stem also has other characters, `{source}-{hash}` when it has no ASCII at all);
`{6-digit code}_{slug}` names of the standard datasets (e.g. `442020_evacuation_space`)
take the standard title and the A-xx tag.
"""

import codecs
import csv
import hashlib
import io
import json
import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portal.catalog.schemas import FREQUENCIES, check_name, clean_tags, license_id
from portal.catalog.standard_datasets import BY_SLUG, StandardDataset, find_by_label
from portal.core.errors import InvalidInput
from portal.core.principal import Visibility
from portal.geo.crs import parse_crs
from portal.geo.registry import LAYER_ID
from portal.harvesters.base import HarvestedDataset

FILE_SIDECARS = (".meta.yaml", ".meta.yml", ".meta.json")
FOLDER_SIDECARS = ("meta.yaml", "meta.yml", "meta.json")
SMARTMAP_CONFIG = "config.yml"
SMARTMAP_ATTRIBUTES = "attributes.csv"
MAX_SIDECAR_BYTES = 1024 * 1024
_STANDARD_NAME = re.compile(r"^(\d{6})_([a-z_]+)$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


class Sidecar(BaseModel):
    """What a sidecar may say about one file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = None
    title: str | None = Field(default=None, min_length=1, max_length=500)
    title_en: str | None = Field(default=None, max_length=500)
    notes: str | None = Field(default=None, max_length=20_000)
    tags: list[str] | None = None
    groups: list[str] | None = None
    license_id: str | None = None
    visibility: Visibility | None = None
    shared_with: list[str] | None = None
    update_frequency: str | None = None
    standard_dataset: str | None = None
    temporal_start: date | None = None
    temporal_end: date | None = None
    contact_name: str | None = Field(default=None, max_length=200)
    contact_email: str | None = Field(default=None, max_length=320)
    source_crs: str | None = None
    encoding: str | None = None
    zone: int | None = Field(default=None, ge=1, le=19)
    x_column: str | None = None
    y_column: str | None = None
    layer_id: str | None = None

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)

    @field_validator("layer_id")
    @classmethod
    def _layer_id(cls, value: str | None) -> str | None:
        if value and not LAYER_ID.match(value):
            raise ValueError(
                f"{value!r} must start with a letter and use only a-z, 0-9 and _ "
                "(at most 40 characters)"
            )
        return value or None

    @field_validator("tags", "groups", "shared_with", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        # A single tag written without brackets, or "a, b" on one line.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_tags(value)

    @field_validator("license_id")
    @classmethod
    def _license(cls, value: str | None) -> str | None:
        return None if value is None else license_id(value)

    @field_validator("update_frequency")
    @classmethod
    def _frequency(cls, value: str | None) -> str | None:
        if value and value not in FREQUENCIES:
            raise ValueError(f"must be one of {', '.join(FREQUENCIES)}")
        return value or None

    @field_validator("standard_dataset")
    @classmethod
    def _standard(cls, value: str | None) -> str | None:
        if not value:
            return None
        found = find_by_label(value)
        if found is None:
            raise ValueError(f"{value!r} is not a standard dataset (use A-01 … A-17)")
        return found.id

    def merged_over(self, base: "Sidecar") -> "Sidecar":
        """This sidecar's fields, falling back to `base` for the ones it does not set."""
        return base.model_copy(update=self.model_dump(exclude_unset=True))


def read_sidecar(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON sidecar into a mapping, with errors a clerk can act on."""
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise InvalidInput(f"{path.name}: the sidecar is over 1 MB; is it the right file?")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            # Aliases are never needed here, and nested ones can expand without end.
            if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text)):
                raise InvalidInput(f"{path.name}: YAML aliases (*name) are not accepted")
            data = yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path.name}: cannot be read ({_short(exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name}: must hold field: value pairs (a mapping)")
    return data


def sidecar_fields(data: dict[str, Any], label: str) -> Sidecar:
    """Validate sidecar fields; unknown or wrong fields name themselves."""
    try:
        return Sidecar.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "value"
            if error["type"] == "extra_forbidden":
                known = ", ".join(Sidecar.model_fields)
                problems.append(f"{where!r} is not a known field (known: {known})")
            else:
                problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise InvalidInput(f"{label}: {'; '.join(problems)}") from exc


def folder_entry(data: dict[str, Any], file_name: str, label: str) -> dict[str, Any]:
    """The folder sidecar's defaults merged with its entry for one file."""
    unknown = set(data) - {"defaults", "files"}
    if unknown:
        raise InvalidInput(
            f"{label}: {sorted(unknown)[0]!r} is not known here; a folder meta.yaml holds "
            "defaults: and files: (put single-file fields in <file>.meta.yaml)"
        )
    defaults = data.get("defaults") or {}
    files = data.get("files") or {}
    if not isinstance(defaults, dict) or not isinstance(files, dict):
        raise InvalidInput(f"{label}: defaults: and files: must be mappings")
    stem = file_name.rsplit(".", 1)[0]
    entry = files.get(file_name, files.get(stem)) or {}
    if not isinstance(entry, dict):
        raise InvalidInput(f"{label}: the entry for {file_name} must be a mapping")
    return {**defaults, **entry}


def smartmap_metadata(sidecars: dict[str, Path]) -> tuple[dict[str, Any], dict[str, str]]:
    """Read `config.yml` (title) and `attributes.csv` (column labels) of the smartmap layout.

    `sidecars` maps lower-case file names to the entry's sidecar files.
    """
    fields: dict[str, Any] = {}
    config = sidecars.get(SMARTMAP_CONFIG)
    if config is not None:
        data = read_sidecar(config)
        if isinstance(data.get("name"), str) and data["name"].strip():
            fields["title"] = data["name"].strip()
    labels: dict[str, str] = {}
    attributes = sidecars.get(SMARTMAP_ATTRIBUTES)
    if attributes is not None and attributes.stat().st_size <= MAX_SIDECAR_BYTES:
        text = attributes.read_bytes().decode("utf-8-sig", errors="replace")
        for row in csv.DictReader(io.StringIO(text)):
            original, shown = (row.get("original_name") or "").strip(), row.get("display_name")
            if original and shown and shown.strip():
                labels[original] = shown.strip()
    return fields, labels


def entry_sidecar(
    sidecars: list[Path], file_name: str, *, smartmap: bool
) -> tuple[Sidecar, dict[str, Any], bytes]:
    """An entry's sidecar fields (file sidecar over folder entry over smartmap files).

    Returns the fields, extras for the dataset, and the sidecars' bytes (for the hash).
    """
    fields: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    raw = b""
    by_name = {p.name.lower(): p for p in sidecars}
    if smartmap:
        smart, labels = smartmap_metadata(by_name)
        fields |= smart
        if labels:
            extras["column_labels"] = labels
    for path in sidecars:
        if path.name.lower() in FOLDER_SIDECARS:
            entry = folder_entry(read_sidecar(path), file_name, path.name)
            fields |= entry
            # Only this file's part counts: editing another file's entry changes nothing here.
            raw += json.dumps(entry, sort_keys=True, default=str).encode()
        else:
            raw += path.name.encode() + b"\0" + path.read_bytes()
    for path in sidecars:
        if path.name.lower().endswith(FILE_SIDECARS):
            fields |= read_sidecar(path)
            break
    label = ", ".join(p.name for p in sidecars) or file_name
    sidecar = sidecar_fields(fields, label)
    if sidecar.zone and sidecar.source_crs:
        raise InvalidInput(f"{label}: give zone or source_crs, not both")
    if bool(sidecar.x_column) != bool(sidecar.y_column):
        raise InvalidInput(f"{label}: give both x_column (northing) and y_column (easting)")
    if sidecar.encoding:
        check_encoding_for(sidecar.encoding, label)
    if sidecar.source_crs:
        parse_crs(sidecar.source_crs, file_name=label)
    return sidecar, extras, raw


def check_encoding_for(value: str, label: str) -> None:
    """Refuse an encoding Python does not know."""
    try:
        codecs.lookup(value)
    except LookupError:
        raise InvalidInput(
            f"{label}: unknown encoding {value!r} (use cp932, utf-8 or euc-jp)"
        ) from None


def dataset_from(
    sidecar: Sidecar,
    *,
    stem: str,
    remote_id: str,
    source_name: str,
    name_prefix: str | None,
    extras: dict[str, Any],
) -> HarvestedDataset:
    """Build the dataset's metadata from the sidecar, filling the gaps from the file name."""
    standard = _standard_from_name(stem)
    standard_id = sidecar.standard_dataset or (standard.id if standard else None)
    title = sidecar.title or (standard.title if standard else stem)
    tags = list(sidecar.tags or [])
    if standard_id and standard_id not in tags:
        tags.append(standard_id)
    return HarvestedDataset(
        name=sidecar.name or derived_name(stem, remote_id, source_name, name_prefix),
        title=title,
        title_en=sidecar.title_en,
        notes=sidecar.notes or "",
        tags=tags,
        groups=list(sidecar.groups or []),
        license_id=sidecar.license_id,
        update_frequency=sidecar.update_frequency,
        temporal_start=sidecar.temporal_start,
        temporal_end=sidecar.temporal_end,
        contact_name=sidecar.contact_name,
        contact_email=sidecar.contact_email,
        standard_dataset=standard_id,
        visibility=sidecar.visibility,
        shared_with=sidecar.shared_with or [],
        extras=extras,
    )


def derived_name(stem: str, remote_id: str, source_name: str, prefix: str | None) -> str:
    """An ASCII dataset name from a file stem, stable for the same path."""
    folded = unicodedata.normalize("NFKC", stem)
    slug = _NOT_SLUG.sub("-", folded.lower()).strip("-")
    digest = hashlib.sha1(remote_id.encode()).hexdigest()[:6]
    if not slug:
        name = f"{_NOT_SLUG.sub('-', source_name.lower()).strip('-')}-{digest}"
    elif not folded.isascii():
        # 「R5_道路台帳」 and 「R5_水道台帳」 would both be r5 without it.
        name = f"{slug[:80]}-{digest}"
    else:
        name = slug
    return f"{prefix}-{name}" if prefix else name


def _standard_from_name(stem: str) -> StandardDataset | None:
    match = _STANDARD_NAME.match(stem)
    return BY_SLUG.get(match.group(2)) if match else None


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]
