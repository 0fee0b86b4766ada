"""Publish a fetched object: load its files as layers, then write the dataset and resources."""

import hashlib
import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.catalog.datasets import create_dataset, patch_dataset, set_dataset_shares
from portal.catalog.departments import department_id_by_slug
from portal.catalog.models import Dataset, Resource
from portal.catalog.resources import add_resource, remove_resource
from portal.catalog.schemas import DatasetCreate, DatasetUpdate, ResourceCreate
from portal.core.database import session_scope
from portal.core.errors import Conflict
from portal.core.principal import SYSTEM, Visibility
from portal.geo.loader import load_layer_from_file
from portal.geo.models import Layer
from portal.geo.registry import ensure_layer, share_layer
from portal.harvesters.base import FetchedObject, HarvestContext, HarvestedFile, ImportResult
from portal.harvesters.models import HarvestRecord

LOADABLE = {".shp", ".gpkg", ".geojson", ".json", ".kml", ".csv", ".xlsx", ".gml"}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def publish_fetched(ctx: HarvestContext, fetched: FetchedObject) -> ImportResult:
    """Create or update the dataset of a fetched object, with its layers and files."""
    with session_scope(ctx.sessions) as session:
        record = session.get(HarvestRecord, (ctx.source.id, fetched.remote.remote_id))
        existing = _existing_name(session, record)
        name = existing or _free_name(session, fetched.dataset.name)
    layers, warnings, extent = _load_layers(ctx, fetched, name)
    with session_scope(ctx.sessions) as session:
        status = "updated" if existing else "created"
        dataset_id = _write_dataset(ctx, session, fetched, name, existing is not None, extent)
        _replace_resources(ctx, session, fetched, name, dataset_id, layers)
        if fetched.dataset.shared_with:
            departments = fetched.dataset.shared_with
            set_dataset_shares(session, SYSTEM, name, departments, ip=None)
            ids = [department_id_by_slug(session, slug) for slug in departments]
            for layer_id in layers:
                share_layer(session, layer_id=layer_id, department_ids=ids)
        _remember(session, ctx, fetched, dataset_id)
    return ImportResult(status, dataset_id, warnings)


def layer_id_for(dataset_name: str, index: int) -> str:
    """A layer id (`^[a-z][a-z0-9_]{0,39}$`) for the n-th loadable file of a dataset."""
    base = "h_" + _NOT_SLUG.sub("_", dataset_name.lower()).strip("_")
    digest = hashlib.sha1(f"{dataset_name}:{index}".encode()).hexdigest()[:6]
    return f"{base[:32]}_{digest}"


def _load_layers(
    ctx: HarvestContext, fetched: FetchedObject, name: str
) -> tuple[dict[str, tuple[HarvestedFile, str | None]], list[str], list[float] | None]:
    """Load every loadable file; a failure stops here, before the catalog is touched.

    Returns each layer id with its file and geometry type (None for a plain table).
    """
    layers: dict[str, tuple[HarvestedFile, str | None]] = {}
    warnings: list[str] = []
    extent: list[float] | None = None
    visibility = fetched.dataset.visibility or ctx.source.default_visibility
    for index, harvested in enumerate(_loadable(fetched.files)):
        ctx.check_time()
        layer_id = harvested.layer_id or layer_id_for(name, index)
        with session_scope(ctx.sessions) as session:
            department_id = department_id_by_slug(session, ctx.source.department)
            if harvested.layer_id:
                _check_layer_claim(session, layer_id, department_id, name)
            ensure_layer(
                session,
                layer_id=layer_id,
                title=harvested.title or fetched.dataset.title,
                title_en=fetched.dataset.title_en,
                department_id=department_id,
                visibility=visibility,
            )
        result = load_layer_from_file(
            ctx.engine,
            layer_id=layer_id,
            path=harvested.path,
            source_layer=harvested.source_layer,
            encoding=harvested.encoding,
            source_crs=harvested.source_crs or ctx.source.config.get("source_crs"),
            point_columns=harvested.point_columns,
        )
        warnings += [f"{harvested.name}: {w}" for w in result.warnings]
        layers[layer_id] = (harvested, result.geometry_type)
        extent = _union(extent, result.bbox)
    return layers, warnings, extent


def _check_layer_claim(
    session: Session, layer_id: str, department_id: int, dataset_name: str
) -> None:
    """Refuse a chosen layer id that another department or dataset owns: its rows would go."""
    layer = session.get(Layer, layer_id)
    if layer is None:
        return
    if layer.department_id != department_id:
        raise Conflict(
            f"layer id {layer_id!r} belongs to another department's layer; "
            "choose another layer_id in the sidecar"
        )
    other = session.execute(
        select(Dataset.name)
        .join(Resource, Resource.dataset_id == Dataset.id)
        .where(
            Resource.layer_id == layer_id,
            Dataset.name != dataset_name,
            Dataset.state == "active",
        )
    ).first()
    if other is not None:
        raise Conflict(
            f"layer id {layer_id!r} is already the layer of dataset {other[0]!r}; "
            "choose another layer_id in the sidecar"
        )


def _write_dataset(
    ctx: HarvestContext,
    session: Session,
    fetched: FetchedObject,
    name: str,
    exists: bool,
    extent: list[float] | None,
) -> uuid.UUID:
    meta = fetched.dataset
    fields: dict[str, Any] = {
        "title": meta.title,
        "title_en": meta.title_en,
        "notes": meta.notes,
        "tags": meta.tags,
        "groups": meta.groups,
        "source_url": meta.source_url,
        "update_frequency": meta.update_frequency,
        "temporal_start": meta.temporal_start,
        "temporal_end": meta.temporal_end,
        "contact_name": meta.contact_name,
        "contact_email": meta.contact_email,
        "standard_dataset": meta.standard_dataset,
        "extras": {**meta.extras, "harvest_source": ctx.source.name},
    }
    if meta.license_id:
        fields["license_id"] = meta.license_id
    if extent is not None:
        fields["bbox"] = tuple(extent)
    if exists:
        return patch_dataset(session, SYSTEM, name, DatasetUpdate(**fields)).id
    visibility = meta.visibility or ctx.source.default_visibility
    created = DatasetCreate(
        name=name, department=ctx.source.department, visibility=visibility, **fields
    )
    return create_dataset(session, SYSTEM, created).id


def _replace_resources(
    ctx: HarvestContext,
    session: Session,
    fetched: FetchedObject,
    name: str,
    dataset_id: uuid.UUID,
    layers: dict[str, tuple[HarvestedFile, str | None]],
) -> None:
    """Swap the dataset's files and links for the fetched ones; layer resources stay."""
    old = session.execute(
        select(Resource.id, Resource.kind, Resource.layer_id).where(
            Resource.dataset_id == dataset_id
        )
    ).all()
    for resource_id, kind, _ in old:
        if kind in ("file", "url"):
            remove_resource(session, SYSTEM, resource_id, storage=ctx.storage)
    have_layers = {layer for _, kind, layer in old if kind == "layer"}
    visibility = fetched.dataset.visibility or ctx.source.default_visibility
    for harvested in (f for f in fetched.files if f.store):
        with harvested.path.open("rb") as stream:
            add_resource(
                session,
                SYSTEM,
                name,
                ResourceCreate(name=harvested.title or harvested.name, format=harvested.format),
                upload=stream,
                file_name=harvested.name,
                storage=ctx.storage,
                max_bytes=ctx.settings.max_upload_bytes,
                municipality_code=ctx.settings.municipality_code,
            )
    for link in fetched.links:
        resource = ResourceCreate(
            name=link.name, url=link.url, format=link.format, description=link.description
        )
        add_resource(session, SYSTEM, name, resource)
    for layer_id, (harvested, geometry_type) in layers.items():
        if layer_id in have_layers:
            continue
        label = "地図レイヤ" if geometry_type else "表データ"
        add_resource(
            session,
            SYSTEM,
            name,
            ResourceCreate(
                name=f"{harvested.title or fetched.dataset.title}（{label}）",
                format="GeoJSON" if geometry_type else "CSV",
                layer_id=layer_id,
                visibility=Visibility(visibility),
            ),
        )


def _remember(
    session: Session, ctx: HarvestContext, fetched: FetchedObject, dataset_id: uuid.UUID
) -> None:
    record = session.get(HarvestRecord, (ctx.source.id, fetched.remote.remote_id))
    if record is None:
        record = HarvestRecord(source_id=ctx.source.id, remote_id=fetched.remote.remote_id)
        session.add(record)
    record.dataset_id = dataset_id
    record.content_hash = fetched.content_hash
    record.remote_modified = fetched.remote.modified
    record.last_job_id = ctx.job_id


def _existing_name(session: Session, record: HarvestRecord | None) -> str | None:
    if record is None or record.dataset_id is None:
        return None
    dataset = session.get(Dataset, record.dataset_id)
    return dataset.name if dataset is not None and dataset.state == "active" else None


def _free_name(session: Session, wanted: str) -> str:
    """The wanted name, or the same with a counter when another dataset has it."""
    base = _NOT_SLUG.sub("-", wanted.lower()).strip("-")[:90] or "dataset"
    taken = set(
        session.execute(select(Dataset.name).where(Dataset.name.like(f"{base}%"))).scalars()
    )
    name, counter = base, 2
    while name in taken or len(name) < 2:
        name, counter = f"{base}-{counter}", counter + 1
    return name


def _union(extent: list[float] | None, bbox: list[float] | None) -> list[float] | None:
    """The box covering both extents (the dataset's extent is that of all its layers)."""
    if bbox is None:
        return extent
    if extent is None:
        return list(bbox)
    return [min(extent[0], bbox[0]), min(extent[1], bbox[1]),
            max(extent[2], bbox[2]), max(extent[3], bbox[3])]  # fmt: skip


def _loadable(files: list[HarvestedFile]) -> list[HarvestedFile]:
    return [f for f in files if f.load and f.path.suffix.lower() in LOADABLE]
