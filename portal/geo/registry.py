"""The layer registry: create layers and read them through the visibility rules."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from portal.catalog.models import Department
from portal.core import audit
from portal.core.errors import Forbidden, InvalidInput, NotFound
from portal.core.principal import Principal, Role, Visibility
from portal.core.visibility import visible_to
from portal.geo.models import Layer, layer_shares

LAYER_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_LAYER_IDS = frozenset({"catalog"})


@dataclass(frozen=True)
class LayerSummary:
    """A layer as listed to someone allowed to see it."""

    id: str
    title: str
    title_en: str | None
    department_slug: str
    department_name: str
    visibility: Visibility
    feature_count: int
    geometry_type: str | None
    bbox: list[float] | None
    version: int
    loaded_at: datetime | None
    department_id: int = 0
    columns: tuple[dict[str, str], ...] = ()
    revision: int = 0
    style: dict[str, Any] | None = None
    tile_properties: tuple[str, ...] | None = None

    @property
    def column_names(self) -> list[str]:
        """Return the attribute columns' PostgreSQL names, in table order."""
        return [column["name"] for column in self.columns]

    @property
    def is_spatial(self) -> bool:
        """Tell whether the layer has geometries (a non-spatial table has none)."""
        return self.geometry_type is not None


def ensure_layer(
    session: Session,
    *,
    layer_id: str,
    title: str,
    title_en: str | None,
    department_id: int,
    visibility: Visibility,
) -> None:
    """Register a layer if it is new; an existing layer keeps its visibility and shares."""
    if layer_id in RESERVED_LAYER_IDS:
        raise InvalidInput(
            f"layer id {layer_id!r} is reserved (it names the data catalog in the OGC API); "
            "choose another"
        )
    if not LAYER_ID.match(layer_id):
        raise InvalidInput(
            f"layer id {layer_id!r} must start with a letter and use only a-z, 0-9 and _ "
            "(at most 40 characters)"
        )
    statement = (
        insert(Layer)
        .values(
            id=layer_id,
            title=title,
            title_en=title_en,
            department_id=department_id,
            visibility=visibility.value,
        )
        .on_conflict_do_update(index_elements=["id"], set_={"title": title, "title_en": title_en})
    )
    session.execute(statement)


def share_layer(session: Session, *, layer_id: str, department_ids: list[int]) -> None:
    """Set the departments a department-visibility layer is shared with."""
    session.execute(delete(layer_shares).where(layer_shares.c.layer_id == layer_id))
    if department_ids:
        session.execute(
            insert(layer_shares),
            [{"layer_id": layer_id, "department_id": d} for d in department_ids],
        )


def list_layers(session: Session, principal: Principal) -> list[LayerSummary]:
    """Return the loaded layers `principal` may see, by department then id."""
    statement = (
        _visible_layers(principal)
        .where(Layer.table_name.is_not(None))
        .order_by(Department.id, Layer.id)
    )
    return [_summary(layer, department) for layer, department in session.execute(statement)]


def get_layer(session: Session, principal: Principal, layer_id: str) -> LayerSummary:
    """Return one layer, or `NotFound` whether it is missing or hidden from `principal`."""
    row = session.execute(_visible_layers(principal).where(Layer.id == layer_id)).first()
    if row is None:
        raise NotFound(f"layer {layer_id!r} not found")
    return _summary(*row)


def _visible_layers(principal: Principal):  # type: ignore[no-untyped-def]
    return (
        select(Layer, Department)
        .join(Department, Department.id == Layer.department_id)
        .where(
            visible_to(
                principal,
                visibility=Layer.visibility,
                department_id=Layer.department_id,
                shares=layer_shares,
                share_key="layer_id",
                key=Layer.id,
            )
        )
    )


def _summary(layer: Layer, department: Department) -> LayerSummary:
    return LayerSummary(
        id=layer.id,
        title=layer.title,
        title_en=layer.title_en,
        department_slug=department.slug,
        department_name=department.name,
        visibility=Visibility(layer.visibility),
        feature_count=layer.feature_count,
        geometry_type=layer.geometry_type,
        bbox=layer.bbox,
        version=layer.version,
        loaded_at=layer.loaded_at,
        department_id=layer.department_id,
        columns=tuple(layer.columns or ()),
        revision=layer.revision,
        style=layer.style,
        tile_properties=tuple(layer.tile_properties) if layer.tile_properties else None,
    )


@dataclass(frozen=True)
class LayerAccess:
    """A layer's visibility and shares, as an admin of its department manages them."""

    id: str
    title: str
    department_id: int
    department_name: str
    visibility: Visibility
    shared_with: list[int]


def list_manageable_layers(session: Session, principal: Principal) -> list[LayerAccess]:
    """Return the layers whose visibility `principal` may change (department admins)."""
    statement = select(Layer, Department).join(Department, Department.id == Layer.department_id)
    if not principal.is_site_admin:
        admin_of = [d for d in principal.department_ids if principal.has_role(d, Role.admin)]
        statement = statement.where(Layer.department_id.in_(admin_of))
    shares: dict[str, list[int]] = {}
    for layer_id, department_id in session.execute(
        select(layer_shares.c.layer_id, layer_shares.c.department_id)
    ):
        shares.setdefault(layer_id, []).append(department_id)
    return [
        LayerAccess(
            layer.id,
            layer.title,
            layer.department_id,
            department.name,
            Visibility(layer.visibility),
            sorted(shares.get(layer.id, [])),
        )
        for layer, department in session.execute(statement.order_by(Department.id, Layer.id))
    ]


def set_layer_access(
    session: Session,
    principal: Principal,
    *,
    layer_id: str,
    visibility: Visibility,
    shared_with: list[int],
    ip: str | None,
) -> None:
    """Change a layer's visibility and shares; needs the admin role in its department."""
    layer = session.get(Layer, layer_id)
    if layer is None or not principal.has_role(layer.department_id, Role.admin):
        if layer is not None and principal.is_staff and _can_see(session, principal, layer_id):
            raise Forbidden(
                f"changing who can see layer {layer_id!r} needs the admin role in its department"
            )
        raise NotFound(f"layer {layer_id!r} not found")
    before = (layer.visibility, sorted(_shares_of(session, layer_id)))
    shared = sorted(set(shared_with) - {layer.department_id})
    layer.visibility = visibility.value
    share_layer(session, layer_id=layer_id, department_ids=shared)
    if before[0] != visibility.value:
        audit.record(
            session,
            action="layer.visibility_changed",
            actor=principal,
            target=f"layer:{layer_id}",
            detail={"from": before[0], "to": visibility.value},
            ip=ip,
        )
    if before[1] != shared:
        audit.record(
            session,
            action="layer.shares_changed",
            actor=principal,
            target=f"layer:{layer_id}",
            detail={"from": before[1], "to": shared},
            ip=ip,
        )


def _shares_of(session: Session, layer_id: str) -> list[int]:
    rows = session.execute(
        select(layer_shares.c.department_id).where(layer_shares.c.layer_id == layer_id)
    ).scalars()
    return list(rows)


def _can_see(session: Session, principal: Principal, layer_id: str) -> bool:
    return (
        session.execute(_visible_layers(principal).where(Layer.id == layer_id)).first() is not None
    )
