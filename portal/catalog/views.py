"""Read models of datasets and resources, loaded in bulk through the visibility rules."""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session, defer

from portal.catalog.departments import DepartmentPublic
from portal.catalog.licenses import License, get_license
from portal.catalog.models import (
    Dataset,
    Department,
    Group,
    Resource,
    dataset_groups,
    dataset_shares,
    dataset_tags,
)
from portal.core.principal import Principal, Visibility
from portal.core.visibility import visible_to
from portal.geo.models import Layer, layer_shares


@dataclass(frozen=True)
class GroupPublic:
    """A dataset group (one of the e-Stat categories)."""

    name: str
    title: str
    title_en: str | None


@dataclass
class ResourceView:
    """A resource as shown to someone allowed to see it."""

    id: uuid.UUID
    dataset_id: uuid.UUID
    position: int
    name: str
    description: str
    format: str
    kind: str
    visibility: Visibility
    url: str | None
    layer_id: str | None
    size: int | None
    mimetype: str | None
    sha256: str | None
    quality: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    storage_key: str | None = field(default=None, repr=False)


@dataclass
class DatasetView:
    """A dataset with its department, licence, tags, groups and visible resources."""

    id: uuid.UUID
    name: str
    title: str
    title_en: str | None
    notes: str
    department: DepartmentPublic
    visibility: Visibility
    license: License
    source_url: str | None
    version: str | None
    update_frequency: str | None
    temporal_start: date | None
    temporal_end: date | None
    bbox: list[float] | None
    contact_name: str | None
    contact_email: str | None
    standard_dataset: str | None
    extras: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    tags: list[str] = field(default_factory=list)
    groups: list[GroupPublic] = field(default_factory=list)
    resources: list[ResourceView] = field(default_factory=list)


def dataset_visible(principal: Principal) -> ColumnElement[bool]:
    """The WHERE clause for active datasets `principal` may see."""
    return and_(
        Dataset.state == "active",
        visible_to(
            principal,
            visibility=Dataset.visibility,
            department_id=Dataset.department_id,
            shares=dataset_shares,
            share_key="dataset_id",
            key=Dataset.id,
        ),
    )


def resource_visible(principal: Principal) -> ColumnElement[bool]:
    """The WHERE clause for resources `principal` may see (their dataset must be joined)."""
    layer_ok = or_(
        Resource.layer_id.is_(None),
        Resource.layer_id.in_(select(Layer.id).where(layer_visible(principal))),
    )
    return and_(
        visible_to(
            principal,
            visibility=Resource.visibility,
            department_id=Dataset.department_id,
            shares=dataset_shares,
            share_key="dataset_id",
            key=Dataset.id,
        ),
        layer_ok if not principal.is_site_admin else true(),
    )


def layer_visible(principal: Principal) -> ColumnElement[bool]:
    """The WHERE clause for layers `principal` may see."""
    return visible_to(
        principal,
        visibility=Layer.visibility,
        department_id=Layer.department_id,
        shares=layer_shares,
        share_key="layer_id",
        key=Layer.id,
    )


def load_views(session: Session, principal: Principal, ids: list[uuid.UUID]) -> list[DatasetView]:
    """Load full views of the given (already visibility-filtered) datasets, in order."""
    if not ids:
        return []
    extent = [func.ST_XMin(Dataset.spatial), func.ST_YMin(Dataset.spatial)]
    extent += [func.ST_XMax(Dataset.spatial), func.ST_YMax(Dataset.spatial)]
    rows = session.execute(
        select(Dataset, Department, *extent)
        .options(
            defer(Dataset.search_vector),
            defer(Dataset.search_text),
            defer(Dataset.tag_list),
            defer(Dataset.public_formats),
            defer(Dataset.spatial),
        )
        .join(Department, Department.id == Dataset.department_id)
        .where(Dataset.id.in_(ids))
    ).all()
    views = {
        row[0].id: _view(row[0], row[1], None if row[2] is None else [float(v) for v in row[2:]])
        for row in rows
    }
    for dataset_id, tag in session.execute(
        select(dataset_tags.c.dataset_id, dataset_tags.c.tag)
        .where(dataset_tags.c.dataset_id.in_(ids))
        .order_by(dataset_tags.c.tag)
    ):
        views[dataset_id].tags.append(tag)
    for dataset_id, group in session.execute(
        select(dataset_groups.c.dataset_id, Group)
        .join(Group, Group.id == dataset_groups.c.group_id)
        .where(dataset_groups.c.dataset_id.in_(ids))
        .order_by(Group.id)
    ):
        views[dataset_id].groups.append(GroupPublic(group.name, group.title, group.title_en))
    for resource in session.execute(
        select(Resource)
        .join(Dataset, Dataset.id == Resource.dataset_id)
        .where(Resource.dataset_id.in_(ids), resource_visible(principal))
        .order_by(Resource.position, Resource.created_at)
    ).scalars():
        views[resource.dataset_id].resources.append(_resource_view(resource))
    return [views[i] for i in ids if i in views]


def _view(dataset: Dataset, department: Department, bbox: list[float] | None) -> DatasetView:
    return DatasetView(
        id=dataset.id,
        name=dataset.name,
        title=dataset.title,
        title_en=dataset.title_en,
        notes=dataset.notes,
        department=DepartmentPublic(
            department.id, department.slug, department.name, department.name_en
        ),
        visibility=Visibility(dataset.visibility),
        license=get_license(dataset.license_id),
        source_url=dataset.source_url,
        version=dataset.version,
        update_frequency=dataset.update_frequency,
        temporal_start=dataset.temporal_start,
        temporal_end=dataset.temporal_end,
        bbox=bbox,
        contact_name=dataset.contact_name,
        contact_email=dataset.contact_email,
        standard_dataset=dataset.standard_dataset,
        extras=dataset.extras,
        created_at=dataset.created_at,
        modified_at=dataset.modified_at,
    )


def _resource_view(resource: Resource) -> ResourceView:
    return ResourceView(
        id=resource.id,
        dataset_id=resource.dataset_id,
        position=resource.position,
        name=resource.name,
        description=resource.description,
        format=resource.format,
        kind=resource.kind,
        visibility=Visibility(resource.visibility),
        url=resource.url,
        layer_id=resource.layer_id,
        size=resource.size,
        mimetype=resource.mimetype,
        sha256=resource.sha256,
        quality=resource.quality,
        created_at=resource.created_at,
        modified_at=resource.modified_at,
        storage_key=resource.storage_key,
    )
