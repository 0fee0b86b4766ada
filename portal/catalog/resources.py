"""Resources: files, links and layers attached to datasets."""

import mimetypes
import uuid
from datetime import UTC, datetime
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.catalog.datasets import (
    record_change,
    refresh_search_document,
    writable_dataset,
)
from portal.catalog.models import Dataset, Resource, dataset_tags
from portal.catalog.quality import assess_resource
from portal.catalog.schemas import ResourceCreate
from portal.catalog.views import ResourceView, dataset_visible, load_views, resource_visible
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import Principal, Role
from portal.core.storage import Storage, safe_file_name
from portal.geo.models import Layer

FORMAT_BY_SUFFIX = {
    ".csv": "CSV", ".xlsx": "XLSX", ".xls": "XLS", ".json": "JSON", ".geojson": "GeoJSON",
    ".gpkg": "GPKG", ".zip": "ZIP", ".shp": "SHP", ".kml": "KML", ".pdf": "PDF", ".xml": "XML",
    ".txt": "TXT", ".ttl": "RDF", ".rdf": "RDF",
}  # fmt: skip


def add_resource(
    session: Session,
    principal: Principal,
    dataset_name: str,
    data: ResourceCreate,
    *,
    upload: BinaryIO | None = None,
    file_name: str | None = None,
    storage: Storage | None = None,
    max_bytes: int = 0,
    municipality_code: str | None = None,
    ip: str | None = None,
) -> ResourceView:
    """Attach a link, a layer, or an uploaded file to a dataset (editors of its department)."""
    dataset = writable_dataset(session, principal, dataset_name, Role.editor, "adding a resource")
    kinds = [
        k for k, given in (("url", data.url), ("layer", data.layer_id), ("file", upload)) if given
    ]
    if len(kinds) != 1:
        raise InvalidInput("a resource needs exactly one of: url, layer_id, or an uploaded file")
    resource = Resource(
        id=uuid.uuid4(),
        dataset_id=dataset.id,
        name=data.name,
        description=data.description,
        format=data.format.upper() if data.format else "",
        kind=kinds[0],
        visibility=data.visibility.value,
        position=_next_position(session, dataset.id),
    )
    if data.url:
        if not data.url.startswith(("http://", "https://")):
            raise InvalidInput("url must start with http:// or https://")
        resource.url = data.url
    elif data.layer_id:
        if session.get(Layer, data.layer_id) is None:
            raise InvalidInput(f"no layer {data.layer_id!r}")
        resource.layer_id = data.layer_id
    else:
        assert upload is not None and storage is not None
        name = safe_file_name(file_name or data.name)
        stored = storage.save(
            upload, key=f"resources/{dataset.id}/{resource.id}/{name}", max_bytes=max_bytes
        )
        suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        resource.storage_key, resource.size, resource.sha256 = (
            stored.key,
            stored.size,
            stored.sha256,
        )
        resource.mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        resource.format = resource.format or FORMAT_BY_SUFFIX.get(
            suffix, suffix.lstrip(".").upper()
        )
        if municipality_code:
            resource.quality = assess_resource(
                storage.local_path(stored.key),
                resource.format,
                file_name=name,
                municipality_code=municipality_code,
                tags=_claims(session, dataset),
            )
    session.add(resource)
    dataset.modified_at = datetime.now(UTC)
    record_change(
        session, principal, dataset.id, "resource_added", {"resource": [None, data.name]}, ip
    )
    session.flush()
    refresh_search_document(session, dataset.id)
    return get_resource(session, principal, str(resource.id))


def _claims(session: Session, dataset: Dataset) -> list[str]:
    """What may claim a standard dataset: the dataset's tags, title and declared standard."""
    tags = session.execute(
        select(dataset_tags.c.tag).where(dataset_tags.c.dataset_id == dataset.id)
    ).scalars()
    return [*tags, dataset.title, *([dataset.standard_dataset] if dataset.standard_dataset else [])]


def get_resource(session: Session, principal: Principal, resource_id: str) -> ResourceView:
    """Return a resource, or `NotFound` if it or its dataset is hidden from `principal`."""
    try:
        key = uuid.UUID(resource_id)
    except ValueError as exc:
        raise NotFound(f"resource {resource_id!r} not found") from exc
    dataset_id = session.execute(
        select(Resource.dataset_id)
        .join(Dataset, Dataset.id == Resource.dataset_id)
        .where(Resource.id == key, dataset_visible(principal), resource_visible(principal))
    ).scalar()
    if dataset_id is None:
        raise NotFound(f"resource {resource_id!r} not found")
    view = load_views(session, principal, [dataset_id])[0]
    return next(r for r in view.resources if r.id == key)


def _next_position(session: Session, dataset_id: uuid.UUID) -> int:
    current = session.execute(
        select(func.max(Resource.position)).where(Resource.dataset_id == dataset_id)
    ).scalar()
    return 0 if current is None else int(current) + 1


def remove_resource(
    session: Session,
    principal: Principal,
    resource_id: uuid.UUID,
    *,
    storage: Storage | None = None,
    ip: str | None = None,
) -> None:
    """Delete a resource (and its stored file) from a dataset the caller may edit."""
    resource = session.get(Resource, resource_id)
    if resource is None:
        raise NotFound(f"resource {resource_id} not found")
    dataset = session.get(Dataset, resource.dataset_id)
    assert dataset is not None
    writable_dataset(session, principal, dataset.name, Role.editor, "removing a resource")
    if resource.storage_key and storage is not None:
        storage.delete(resource.storage_key)
    session.delete(resource)
    change = {"resource": [resource.name, None]}
    record_change(session, principal, dataset.id, "resource_removed", change, ip)
