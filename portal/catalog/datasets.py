"""Dataset writes (with roles, change history and the search document) and reads."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal_column, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.catalog.departments import department_id_by_slug
from portal.catalog.models import (
    Dataset,
    DatasetChange,
    Department,
    Group,
    Resource,
    dataset_groups,
    dataset_shares,
    dataset_tags,
)
from portal.catalog.schemas import DatasetCreate, DatasetUpdate
from portal.catalog.textsearch import document_lexemes, normalize
from portal.catalog.views import DatasetView, dataset_visible, load_views
from portal.core import audit
from portal.core.accounts import require_role
from portal.core.errors import Conflict, InvalidInput, NotFound
from portal.core.principal import Principal, Role, Visibility
from portal.geo.models import Layer

TRACKED = (
    "title", "title_en", "notes", "visibility", "license_id", "source_url", "version",
    "update_frequency", "temporal_start", "temporal_end", "contact_name", "contact_email",
    "standard_dataset", "extras",
)  # fmt: skip


def create_dataset(
    session: Session, principal: Principal, data: DatasetCreate, *, ip: str | None = None
) -> DatasetView:
    """Create a dataset in a department where the caller is an editor."""
    department_id = department_id_by_slug(session, data.department)
    require_role(principal, department_id, Role.editor, "creating a dataset")
    if data.visibility is not Visibility.public:
        require_role(principal, department_id, Role.admin, "creating a non-public dataset")
    if session.execute(select(Dataset.id).where(Dataset.name == data.name)).first():
        raise Conflict(f"a dataset named {data.name!r} already exists")
    _group_ids(session, data.groups)
    fields = data.model_dump(include=set(TRACKED))
    dataset = Dataset(name=data.name, department_id=department_id, **_db_values(fields))
    dataset.spatial = _envelope(data.bbox)
    session.add(dataset)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a dataset named {data.name!r} already exists") from exc
    _set_tags(session, dataset.id, data.tags)
    _set_groups(session, dataset.id, data.groups)
    record_change(session, principal, dataset.id, "created", {"name": [None, data.name]}, ip)
    refresh_search_document(session, dataset.id)
    return get_dataset(session, principal, data.name)


def patch_dataset(
    session: Session, principal: Principal, name: str, data: DatasetUpdate, *, ip: str | None = None
) -> DatasetView:
    """Change the given fields of a dataset; visibility changes need the admin role."""
    dataset = writable_dataset(session, principal, name, Role.editor, "editing a dataset")
    given = data.model_dump(exclude_unset=True)
    changes: dict[str, list[Any]] = {}
    if "visibility" in given and given["visibility"] != dataset.visibility:
        require_role(principal, dataset.department_id, Role.admin, "changing who can see a dataset")
    for key, value in _db_values({k: v for k, v in given.items() if k in TRACKED}).items():
        if getattr(dataset, key) != value:
            changes[key] = [_jsonable(getattr(dataset, key)), _jsonable(value)]
            setattr(dataset, key, value)
    if "bbox" in given:
        dataset.spatial = _envelope(data.bbox)
        changes["bbox"] = [None, list(data.bbox) if data.bbox else None]
    if data.tags is not None:
        changes |= _set_tags(session, dataset.id, data.tags)
    if data.groups is not None:
        changes |= _set_groups(session, dataset.id, data.groups)
    if changes:
        dataset.modified_at = datetime.now(UTC)
        record_change(session, principal, dataset.id, "updated", changes, ip)
        refresh_search_document(session, dataset.id)
    return get_dataset(session, principal, dataset.name)


def set_dataset_shares(
    session: Session,
    principal: Principal,
    name: str,
    department_slugs: list[str],
    *,
    ip: str | None,
) -> None:
    """Share a department-visibility dataset with other departments (department admins)."""
    dataset = writable_dataset(session, principal, name, Role.admin, "sharing a dataset")
    ids = sorted(
        {department_id_by_slug(session, s) for s in department_slugs} - {dataset.department_id}
    )
    session.execute(delete(dataset_shares).where(dataset_shares.c.dataset_id == dataset.id))
    if ids:
        session.execute(
            insert(dataset_shares), [{"dataset_id": dataset.id, "department_id": i} for i in ids]
        )
    record_change(
        session, principal, dataset.id, "shared", {"shared_with": [None, department_slugs]}, ip
    )


def get_dataset(session: Session, principal: Principal, name_or_id: str) -> DatasetView:
    """Return a dataset by name or id, or `NotFound` if it is missing or hidden."""
    key = Dataset.name == name_or_id
    parsed = _uuid(name_or_id)
    if parsed is not None:
        key = Dataset.id == parsed
    found = session.execute(select(Dataset.id).where(key, dataset_visible(principal))).scalar()
    if found is None:
        raise NotFound(f"dataset {name_or_id!r} not found")
    return load_views(session, principal, [found])[0]


def list_dataset_names(
    session: Session, principal: Principal, *, limit: int | None = None, offset: int = 0
) -> list[str]:
    """Return the names of the datasets `principal` may see, alphabetically."""
    statement = (
        select(Dataset.name).where(dataset_visible(principal)).order_by(Dataset.name).offset(offset)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.execute(statement).scalars())


def dataset_history(session: Session, principal: Principal, name: str) -> list[DatasetChange]:
    """Return a dataset's change history, newest first (staff who can see the dataset)."""
    dataset = get_dataset(session, principal, name)
    if not principal.is_staff and not principal.is_site_admin:
        return []
    rows = session.execute(
        select(DatasetChange)
        .where(DatasetChange.dataset_id == dataset.id)
        .order_by(DatasetChange.id.desc())
    ).scalars()
    return list(rows)


def refresh_search_document(session: Session, dataset_id: uuid.UUID) -> None:
    """Rebuild a dataset's tsvector and trigram text from its metadata and resources."""
    dataset = session.get(Dataset, dataset_id)
    assert dataset is not None
    department = session.get(Department, dataset.department_id)
    tags = list(
        session.execute(
            select(dataset_tags.c.tag).where(dataset_tags.c.dataset_id == dataset_id)
        ).scalars()
    )
    groups = session.execute(
        select(Group.title, Group.title_en)
        .join(dataset_groups, dataset_groups.c.group_id == Group.id)
        .where(dataset_groups.c.dataset_id == dataset_id)
    ).all()
    resources = session.execute(
        select(Resource.name, Resource.format).where(Resource.dataset_id == dataset_id)
    ).all()
    texts = [
        dataset.title,
        dataset.title_en or "",
        dataset.notes,
        " ".join(tags),
        " ".join(f"{t} {e or ''}" for t, e in groups),
        f"{department.name} {department.name_en or ''}" if department else "",
        " ".join(f"{n} {f}" for n, f in resources),
    ]
    weighted = func.setweight(
        func.to_tsvector("simple", document_lexemes(dataset.title, dataset.title_en or "", *tags)),
        literal_column("'A'"),
    ).op("||")(
        func.setweight(
            func.to_tsvector("simple", document_lexemes(*texts[2:])), literal_column("'B'")
        )
    )
    dataset.search_vector = weighted
    dataset.tag_list = sorted(tags)
    dataset.public_formats = sorted(
        session.execute(
            select(func.upper(Resource.format))
            .outerjoin(Layer, Layer.id == Resource.layer_id)
            .where(
                Resource.dataset_id == dataset_id,
                Resource.format != "",
                Resource.visibility == Visibility.public.value,
                or_(Resource.layer_id.is_(None), Layer.visibility == Visibility.public.value),
            )
            .distinct()
        ).scalars()
    )
    dataset.search_text = normalize(" ".join(texts[:4]))[:20_000]


def writable_dataset(
    session: Session, principal: Principal, name: str, role: Role, doing: str
) -> Dataset:
    """Lock a dataset the caller may see for writing, checking their role in its department."""
    parsed = _uuid(name)
    key = Dataset.id == parsed if parsed is not None else Dataset.name == name
    dataset = session.execute(
        select(Dataset).where(key, dataset_visible(principal)).with_for_update()
    ).scalar()
    if dataset is None:
        raise NotFound(f"dataset {name!r} not found")
    require_role(principal, dataset.department_id, role, doing)
    return dataset


def _set_tags(session: Session, dataset_id: uuid.UUID, tags: list[str]) -> dict[str, list[Any]]:
    before = sorted(
        session.execute(
            select(dataset_tags.c.tag).where(dataset_tags.c.dataset_id == dataset_id)
        ).scalars()
    )
    if before == sorted(tags):
        return {}
    session.execute(delete(dataset_tags).where(dataset_tags.c.dataset_id == dataset_id))
    if tags:
        session.execute(insert(dataset_tags), [{"dataset_id": dataset_id, "tag": t} for t in tags])
    return {"tags": [before, sorted(tags)]}


def _group_ids(session: Session, names: list[str]) -> dict[str, int]:
    """Return the ids of the named groups, refusing unknown names with the choices."""
    found = dict(session.execute(select(Group.name, Group.id).where(Group.name.in_(names))).all())
    unknown = [n for n in names if n not in found]
    if unknown:
        choices = ", ".join(session.execute(select(Group.name).order_by(Group.id)).scalars())
        raise InvalidInput(f"unknown group {unknown[0]!r}; use one of: {choices}")
    return found


def _set_groups(session: Session, dataset_id: uuid.UUID, names: list[str]) -> dict[str, list[Any]]:
    found = _group_ids(session, names)
    before = sorted(
        session.execute(
            select(Group.name)
            .join(dataset_groups, dataset_groups.c.group_id == Group.id)
            .where(dataset_groups.c.dataset_id == dataset_id)
        ).scalars()
    )
    if before == sorted(names):
        return {}
    session.execute(delete(dataset_groups).where(dataset_groups.c.dataset_id == dataset_id))
    if names:
        session.execute(
            insert(dataset_groups),
            [{"dataset_id": dataset_id, "group_id": found[n]} for n in names],
        )
    return {"groups": [before, sorted(names)]}


def record_change(
    session: Session,
    principal: Principal,
    dataset_id: uuid.UUID,
    action: str,
    changes: dict[str, Any],
    ip: str | None,
) -> None:
    """Append to the dataset's change history and the audit log."""
    session.add(
        DatasetChange(
            dataset_id=dataset_id,
            actor_user_id=principal.user_id,
            actor=principal.label,
            action=action,
            changes=changes,
        )
    )
    audit.record(
        session,
        action=f"dataset.{action}",
        actor=principal,
        target=f"dataset:{dataset_id}",
        detail={"fields": sorted(changes)},
        ip=ip,
    )


def _envelope(bbox: tuple[float, float, float, float] | None) -> Any:
    if bbox is None:
        return None
    minx, miny, maxx, maxy = bbox
    if minx == maxx or miny == maxy:
        # A point or a line has no area: widen it slightly so it stays a polygon.
        minx, miny, maxx, maxy = minx - 1e-6, miny - 1e-6, maxx + 1e-6, maxy + 1e-6
    return func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)


def _db_values(fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(fields)
    if "visibility" in values and isinstance(values["visibility"], Visibility):
        values["visibility"] = values["visibility"].value
    return values


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def delete_dataset(
    session: Session, principal: Principal, name: str, *, ip: str | None = None
) -> None:
    """Withdraw a dataset (it is kept, marked deleted, and no longer listed)."""
    dataset = writable_dataset(session, principal, name, Role.admin, "deleting a dataset")
    dataset.state = "deleted"
    dataset.modified_at = datetime.now(UTC)
    record_change(session, principal, dataset.id, "deleted", {"state": ["active", "deleted"]}, ip)
