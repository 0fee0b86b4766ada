"""The CKAN package dictionary of a dataset: the shape CKAN clients, DCAT and pages share."""

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from portal.catalog.departments import DepartmentPublic
from portal.catalog.views import DatasetView, ResourceView

DATASTORE_FORMATS = {"CSV", "XLSX", "XLS"}


def ckan_time(value: datetime) -> str:
    """Format a timestamp as CKAN does: naive UTC with microseconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def resource_url(base_url: str, dataset_name: str, resource: ResourceView) -> str:
    """Return where a resource is downloaded: the file, the layer export, or the link."""
    if resource.kind == "url" and resource.url:
        return resource.url
    if resource.kind == "layer" and resource.layer_id:
        extension = "geojson" if resource.format.upper() in ("GEOJSON", "") else "csv"
        return f"{base_url}/download/{resource.layer_id}.{extension}"
    file_name = (resource.storage_key or "file").rsplit("/", 1)[-1]
    return f"{base_url}/dataset/{dataset_name}/resource/{resource.id}/download/{quote(file_name)}"


def resource_dict(base_url: str, dataset: DatasetView, resource: ResourceView) -> dict[str, Any]:
    """Return a CKAN resource dictionary."""
    return {
        "id": str(resource.id),
        "package_id": str(dataset.id),
        "name": resource.name,
        "description": resource.description,
        "format": resource.format,
        "url": resource_url(base_url, dataset.name, resource),
        "url_type": "upload" if resource.kind == "file" else None,
        "resource_type": resource.kind,
        "mimetype": resource.mimetype,
        "size": resource.size,
        "hash": f"sha256:{resource.sha256}" if resource.sha256 else "",
        "created": ckan_time(resource.created_at),
        "last_modified": ckan_time(resource.modified_at),
        "metadata_modified": ckan_time(resource.modified_at),
        "position": resource.position,
        "state": "active",
        "layer_id": resource.layer_id,
        "datastore_active": bool(resource.layer_id)
        and resource.format.upper() in DATASTORE_FORMATS,
    }


def organization_dict(department: DepartmentPublic) -> dict[str, Any]:
    """Return the CKAN organization dictionary of a department."""
    return {
        "id": department.slug,
        "name": department.slug,
        "title": department.name,
        "display_name": department.name,
        "title_en": department.name_en,
        "type": "organization",
        "is_organization": True,
        "state": "active",
        "approval_status": "approved",
        "description": "",
        "image_url": "",
        "image_display_url": "",
    }


def package_dict(base_url: str, dataset: DatasetView) -> dict[str, Any]:
    """Return the full CKAN package dictionary (package_show's result)."""
    extras = [{"key": key, "value": _extra(value)} for key, value in sorted(dataset.extras.items())]
    if dataset.bbox:
        extras.append({"key": "spatial", "value": json.dumps(_bbox_polygon(dataset.bbox))})
    for key in ("update_frequency", "standard_dataset"):
        value = getattr(dataset, key)
        if value:
            extras.append({"key": key, "value": value})
    for key in ("temporal_start", "temporal_end"):
        value = getattr(dataset, key)
        if value:
            extras.append({"key": key, "value": value.isoformat()})
    return {
        "id": str(dataset.id),
        "name": dataset.name,
        "title": dataset.title,
        "title_en": dataset.title_en,
        "notes": dataset.notes,
        "type": "dataset",
        "state": "active",
        "private": dataset.visibility.value != "public",
        "visibility": dataset.visibility.value,
        "author": dataset.department.name,
        "author_email": None,
        "maintainer": dataset.contact_name,
        "maintainer_email": dataset.contact_email,
        "license_id": dataset.license.id,
        "license_title": dataset.license.title,
        "license_url": dataset.license.url,
        "isopen": dataset.license.is_open,
        "url": dataset.source_url or f"{base_url}/dataset/{dataset.name}",
        "version": dataset.version,
        "metadata_created": ckan_time(dataset.created_at),
        "metadata_modified": ckan_time(dataset.modified_at),
        "creator_user_id": None,
        "owner_org": dataset.department.slug,
        "organization": organization_dict(dataset.department),
        "groups": [
            {"id": g.name, "name": g.name, "title": g.title, "display_name": g.title}
            for g in dataset.groups
        ],
        "tags": [
            {"id": tag, "name": tag, "display_name": tag, "state": "active", "vocabulary_id": None}
            for tag in dataset.tags
        ],
        "num_tags": len(dataset.tags),
        "resources": [resource_dict(base_url, dataset, r) for r in dataset.resources],
        "num_resources": len(dataset.resources),
        "extras": extras,
        "relationships_as_object": [],
        "relationships_as_subject": [],
    }


def _bbox_polygon(bbox: list[float]) -> dict[str, Any]:
    minx, miny, maxx, maxy = bbox
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _extra(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
