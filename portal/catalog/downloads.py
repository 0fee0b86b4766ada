"""Find what a download URL points at, through the visibility rules (hidden = not found)."""

import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from portal.catalog.convert import Converted, convert_file, tabular_format
from portal.catalog.datasets import get_dataset
from portal.catalog.views import DatasetView, ResourceView
from portal.core.errors import InvalidInput, LoadFailed, NotFound
from portal.core.principal import Principal, Visibility
from portal.core.storage import Storage
from portal.geo.encoding import sniff_encoding

CHARSET_SNIFF_BYTES = 64 * 1024
_CHARSETS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "cp932": "Shift_JIS"}


@dataclass(frozen=True)
class Original:
    """A stored original file as it will be sent."""

    path: Path
    file_name: str
    size: int
    sha256: str | None
    media_type: str
    public: bool


def find_resource(
    session: Session, principal: Principal, dataset_name: str, resource_id: str
) -> tuple[DatasetView, ResourceView]:
    """Return a visible resource of a visible dataset, else `NotFound` (never Forbidden)."""
    dataset = get_dataset(session, principal, dataset_name)
    try:
        key = uuid.UUID(resource_id)
    except ValueError as exc:
        raise NotFound(f"resource {resource_id!r} not found") from exc
    for resource in dataset.resources:
        if resource.id == key:
            return dataset, resource
    raise NotFound(f"resource {resource_id!r} not found")


def stored_name(resource: ResourceView) -> str:
    """Return the file name a stored resource is saved under (its key's last part)."""
    return (resource.storage_key or "").rsplit("/", 1)[-1]


def is_public(dataset: DatasetView, resource: ResourceView) -> bool:
    """Tell whether anyone may fetch the resource (so shared caches may keep it)."""
    return dataset.visibility is Visibility.public and resource.visibility is Visibility.public


def find_original(
    session: Session,
    principal: Principal,
    storage: Storage,
    dataset_name: str,
    resource_id: str,
    file_name: str,
) -> Original:
    """Return the stored original behind `/dataset/{name}/resource/{id}/download/{file}`."""
    dataset, resource = find_resource(session, principal, dataset_name, resource_id)
    name = stored_name(resource)
    if resource.kind != "file" or not resource.storage_key:
        raise NotFound(f"resource {resource_id!r} has no stored file")
    if _nfc(file_name) != _nfc(name):
        raise NotFound(f"resource {resource_id!r} has no file named {file_name!r}")
    path = storage.local_path(resource.storage_key)
    return Original(
        path=path,
        file_name=name,
        size=resource.size or 0,
        sha256=resource.sha256,
        media_type=_media_type(path, resource.mimetype or "application/octet-stream"),
        public=is_public(dataset, resource),
    )


def convert_resource(
    storage: Storage, resource: ResourceView, target: str, *, encoding: str
) -> tuple[Converted, str]:
    """Convert a stored CSV or XLSX resource; return the result and its download name."""
    name = stored_name(resource)
    source = tabular_format(resource.format, name)
    if resource.kind != "file" or not resource.storage_key or source is None:
        raise InvalidInput(
            f"a {resource.format or resource.kind} resource cannot be converted; conversions "
            "are offered for CSV and XLSX files and for table and point layers"
        )
    stem = name.rsplit(".", 1)[0] if "." in name else name
    converted = convert_file(
        storage.local_path(resource.storage_key),
        source,
        target,
        encoding=encoding,
        title=resource.name or stem,
    )
    return converted, f"{stem}.{target}"


def _media_type(path: Path, stored: str) -> str:
    """Name the charset of a text file: many municipal CSVs are CP932, not UTF-8."""
    if not stored.startswith("text/") or "charset=" in stored:
        return stored
    with path.open("rb") as stream:
        sample = stream.read(CHARSET_SNIFF_BYTES)
    try:
        encoding = sniff_encoding(sample)
    except LoadFailed:
        return "application/octet-stream"
    return f"{stored}; charset={_CHARSETS.get(encoding, encoding)}"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
