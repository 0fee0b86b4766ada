"""Create, replace, update and delete single features (OGC API Features Part 4), with history."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from portal.core import audit
from portal.core.accounts import require_role
from portal.core.database import LAYERS_SCHEMA
from portal.core.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, Unauthorized
from portal.core.principal import Principal, Role
from portal.geo.feature_schema import (
    STORAGE_SRID,
    FeatureInput,
    PreparedGeometry,
    parse_feature,
    prepare_geometry,
    store_as_multi,
)
from portal.geo.models import FeatureVersion, Layer
from portal.geo.registry import LayerSummary, get_layer

Database = Engine | Session
ACTIONS = {"create": "created", "replace": "replaced", "update": "updated", "delete": "deleted"}


@dataclass(frozen=True)
class EditResult:
    """The feature an edit touched, and its ETag afterwards (None once it is deleted)."""

    fid: int
    etag: str | None


@dataclass(frozen=True)
class FeatureChange:
    """One recorded edit of a feature: what it became (or, for a delete, what was removed)."""

    operation: str
    layer_version: int
    properties: dict[str, Any] | None
    geometry: dict[str, Any] | None
    actor: str
    at: datetime


@dataclass(frozen=True)
class _Target:
    """The layer's current table, as locked for an edit."""

    layer: LayerSummary
    table: sql.Composed
    version: int
    spatial: bool
    bbox: list[float] | None


def create_feature(
    db: Database,
    principal: Principal,
    *,
    layer_id: str,
    feature: dict[str, Any],
    srid: int = STORAGE_SRID,
    lat_first: bool = False,
    ip: str | None = None,
) -> EditResult:
    """Add a feature to a layer; the database assigns its fid (an id in the body is ignored)."""
    with _unit_of_work(db) as session:
        layer = _editable_layer(session, principal, layer_id)
        parsed = parse_feature(layer, feature)
        target = _target(session, layer, lock=True)
        cursor = _cursor(session)
        geometry = _geometry(cursor, target, parsed, srid, lat_first)
        columns = [sql.Identifier(name) for name in parsed.values]
        marks: list[sql.Composable] = [sql.Placeholder()] * len(columns)
        params = list(parsed.values.values())
        if target.spatial:
            columns.append(sql.Identifier("geom"))
            marks.append(sql.SQL("%s::geometry"))
            params.append(geometry.ewkb if geometry else None)
        statement = sql.SQL("INSERT INTO {} AS t ({}) VALUES ({}) RETURNING {}").format(
            target.table,
            sql.SQL(", ").join(columns),
            sql.SQL(", ").join(marks),
            _returning(target),
        )
        row = _write(cursor, statement, params)
        return _record(session, principal, target, "create", row, geometry, ip)


def replace_feature(
    db: Database,
    principal: Principal,
    *,
    layer_id: str,
    fid: int,
    feature: dict[str, Any],
    if_match: str | None = None,
    srid: int = STORAGE_SRID,
    lat_first: bool = False,
    ip: str | None = None,
) -> EditResult:
    """Replace a feature's properties and geometry; properties left out become NULL."""
    with _unit_of_work(db) as session:
        layer = _editable_layer(session, principal, layer_id)
        parsed = parse_feature(layer, feature, fid=fid)
        return _change(
            session, principal, layer, fid, parsed, "replace", if_match, srid, lat_first, ip
        )


def update_feature(
    db: Database,
    principal: Principal,
    *,
    layer_id: str,
    fid: int,
    patch: dict[str, Any],
    if_match: str | None = None,
    srid: int = STORAGE_SRID,
    lat_first: bool = False,
    ip: str | None = None,
) -> EditResult:
    """Merge a partial Feature into a feature (JSON Merge Patch: a null property becomes NULL).

    The geometry changes only when the patch has a "geometry" member; null removes it.
    """
    with _unit_of_work(db) as session:
        layer = _editable_layer(session, principal, layer_id)
        parsed = parse_feature(layer, patch, fid=fid, partial=True)
        return _change(
            session, principal, layer, fid, parsed, "update", if_match, srid, lat_first, ip
        )


def delete_feature(
    db: Database,
    principal: Principal,
    *,
    layer_id: str,
    fid: int,
    if_match: str | None = None,
    ip: str | None = None,
) -> EditResult:
    """Delete a feature; its history keeps what it held when it was deleted."""
    with _unit_of_work(db) as session:
        layer = _editable_layer(session, principal, layer_id)
        target = _target(session, layer, lock=True)
        cursor = _cursor(session)
        _check_if_match(if_match, _current_etag(cursor, target, fid, lock=True), target, fid)
        statement = sql.SQL("DELETE FROM {} AS t WHERE t.fid = %s RETURNING {}").format(
            target.table, _returning(target)
        )
        row = _write(cursor, statement, [fid])
        return _record(session, principal, target, "delete", row, None, ip)


def feature_etag(db: Database, principal: Principal, layer_id: str, fid: int) -> str:
    """Return a feature's current strong ETag, for GET responses and If-Match checks."""
    with _unit_of_work(db) as session:
        target = _target(session, get_layer(session, principal, layer_id), lock=False)
        return _current_etag(_cursor(session), target, fid, lock=False)


def can_edit_layer(session: Session, principal: Principal, layer_id: str) -> bool:
    """Tell whether `principal` may edit a visible layer's features (for OPTIONS' Allow)."""
    layer = get_layer(session, principal, layer_id)
    signed_in = principal.is_staff or principal.is_site_admin
    return signed_in and principal.has_role(layer.department_id, Role.editor)


def feature_history(
    session: Session, principal: Principal, layer_id: str, fid: int
) -> list[FeatureChange]:
    """Return the edits of one feature, newest first; for staff who can see the layer."""
    layer = get_layer(session, principal, layer_id)
    if not (principal.is_staff or principal.is_site_admin):
        raise Unauthorized(
            f"the edit history of layer {layer.id!r} is for staff; sign in or send an API token"
        )
    versions = session.execute(
        select(FeatureVersion)
        .where(FeatureVersion.layer_id == layer.id, FeatureVersion.fid == fid)
        .order_by(FeatureVersion.id.desc())
    ).scalars()
    return [
        FeatureChange(v.operation, v.layer_version, v.properties, v.geometry, v.actor, v.at)
        for v in versions
    ]


def etag_sql(alias: str = "t") -> sql.Composed:
    """Return the SQL expression of a row's strong ETag: an MD5 of all its values.

    `to_jsonb` writes the geometry as GeoJSON with every digit of its coordinates.
    """
    return sql.SQL("""'"' || md5(to_jsonb({})::text) || '"'""").format(sql.Identifier(alias))


@contextmanager
def _unit_of_work(db: Database) -> Iterator[Session]:
    """Use the caller's session (the caller commits), or one transaction of our own."""
    if isinstance(db, Session):
        yield db
        return
    with Session(db, expire_on_commit=False) as session, session.begin():
        yield session


def _editable_layer(session: Session, principal: Principal, layer_id: str) -> LayerSummary:
    layer = get_layer(session, principal, layer_id)
    if not (principal.is_staff or principal.is_site_admin):
        raise Unauthorized(
            f"editing layer {layer.id!r} needs a signed-in staff member; "
            "sign in or send an API token"
        )
    require_role(principal, layer.department_id, Role.editor, f"editing layer {layer.id!r}")
    return layer


def _target(session: Session, layer: LayerSummary, *, lock: bool) -> _Target:
    """Find the layer's table; `lock` makes edits of one layer, and loads, run one at a time."""
    statement = select(Layer.table_name, Layer.version, Layer.bbox).where(Layer.id == layer.id)
    if lock:
        statement = statement.with_for_update(key_share=True)
    table_name, version, bbox = session.execute(statement).one()
    if table_name is None:
        raise Conflict(f"layer {layer.id!r} has no data yet; load a file into it first")
    cursor = _cursor(session)
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s AND column_name = 'geom')",
        (LAYERS_SCHEMA, table_name),
    )
    spatial = cursor.fetchone()
    table = sql.SQL("{}.{}").format(sql.Identifier(LAYERS_SCHEMA), sql.Identifier(table_name))
    return _Target(layer, table, version, bool(spatial and spatial[0]), bbox)


def _cursor(session: Session) -> psycopg.Cursor[Any]:
    connection = session.connection().connection.driver_connection
    assert isinstance(connection, psycopg.Connection)
    return connection.cursor()


def _change(
    session: Session,
    principal: Principal,
    layer: LayerSummary,
    fid: int,
    parsed: FeatureInput,
    operation: str,
    if_match: str | None,
    srid: int,
    lat_first: bool,
    ip: str | None,
) -> EditResult:
    """Replace or update one locked feature after checking its ETag."""
    target = _target(session, layer, lock=True)
    cursor = _cursor(session)
    geometry = _geometry(cursor, target, parsed, srid, lat_first)
    current = _current_etag(cursor, target, fid, lock=True)
    _check_if_match(if_match, current, target, fid)
    assignments: list[sql.Composable] = [
        sql.SQL("{} = %s").format(sql.Identifier(name)) for name in parsed.values
    ]
    params: list[Any] = list(parsed.values.values())
    if target.spatial and parsed.has_geometry:
        assignments.append(sql.SQL("geom = %s::geometry"))
        params.append(geometry.ewkb if geometry else None)
    if not assignments:
        return EditResult(fid, current)
    statement = sql.SQL("UPDATE {} AS t SET {} WHERE t.fid = %s RETURNING {}").format(
        target.table, sql.SQL(", ").join(assignments), _returning(target)
    )
    row = _write(cursor, statement, [*params, fid])
    return _record(session, principal, target, operation, row, geometry, ip)


def _geometry(
    cursor: psycopg.Cursor[Any], target: _Target, parsed: FeatureInput, srid: int, lat_first: bool
) -> PreparedGeometry | None:
    if parsed.geometry is None:
        return None
    if not target.spatial:
        raise InvalidInput(
            f'layer {target.layer.id!r} is a table without geometries; send "geometry": null'
        )
    multi = store_as_multi(target.layer, parsed.geometry["type"])
    return prepare_geometry(cursor, parsed.geometry, srid=srid, lat_first=lat_first, multi=multi)


def _current_etag(cursor: psycopg.Cursor[Any], target: _Target, fid: int, *, lock: bool) -> str:
    """Return a feature's current ETag, locking its row for the edit to come when `lock`."""
    cursor.execute(
        sql.SQL("SELECT {} FROM {} AS t WHERE t.fid = %s {}").format(
            etag_sql(), target.table, sql.SQL("FOR UPDATE" if lock else "")
        ),
        (fid,),
    )
    row = cursor.fetchone()
    if row is None:
        raise NotFound(f"feature {fid} not found in layer {target.layer.id!r}")
    return str(row[0])


def _check_if_match(if_match: str | None, current: str, target: _Target, fid: int) -> None:
    """Pass a missing If-Match, "*", or a list holding the current ETag (W/ is tolerated)."""
    if if_match is None or if_match.strip() == "*":
        return
    if any(tag.strip().removeprefix("W/") == current for tag in if_match.split(",")):
        return
    raise PreconditionFailed(
        f"feature {fid} of layer {target.layer.id!r} has changed since you read it "
        f"(If-Match {if_match.strip()}; its ETag is now {current}); fetch it again and retry"
    )


def _returning(target: _Target) -> sql.Composed:
    geometry = "ST_AsGeoJSON(t.geom)::jsonb" if target.spatial else "NULL::jsonb"
    return sql.SQL("t.fid, {}, to_jsonb(t) - 'fid' - 'geom', {}").format(
        etag_sql(), sql.SQL(geometry)
    )


def _write(cursor: psycopg.Cursor[Any], statement: sql.Composed, params: list[Any]) -> Any:
    """Run one write in a savepoint, turning a value the column refuses into `InvalidInput`."""
    try:
        with cursor.connection.transaction():
            cursor.execute(statement, params)
            row = cursor.fetchone()
    except psycopg.DataError as exc:
        reason = exc.diag.message_primary or str(exc).splitlines()[0]
        raise InvalidInput(f"a property value does not fit its column ({reason})") from exc
    assert row is not None
    return row


def _record(
    session: Session,
    principal: Principal,
    target: _Target,
    operation: str,
    row: Any,
    geometry: PreparedGeometry | None,
    ip: str | None,
) -> EditResult:
    """Write the history row and audit entry, and bump the layer's revision, count and bbox."""
    fid, etag, properties, geojson = int(row[0]), str(row[1]), row[2], row[3]
    layer_id = target.layer.id
    session.add(
        FeatureVersion(
            layer_id=layer_id,
            fid=fid,
            layer_version=target.version,
            operation=operation,
            properties=properties,
            geometry=geojson,
            actor=principal.label,
            user_id=principal.user_id,
        )
    )
    audit.record(
        session,
        action=f"feature.{ACTIONS[operation]}",
        actor=principal,
        target=f"layer:{layer_id}/{fid}",
        detail={"layer_version": target.version},
        ip=ip,
    )
    changes: dict[str, Any] = {"revision": Layer.revision + 1}
    if operation in ("create", "delete"):
        changes["feature_count"] = Layer.feature_count + (1 if operation == "create" else -1)
    if geometry is not None:
        changes["bbox"] = _extended(target.bbox, geometry.bbox)
    session.execute(update(Layer).where(Layer.id == layer_id).values(**changes))
    session.flush()
    return EditResult(fid, None if operation == "delete" else etag)


def _extended(bbox: list[float] | None, bounds: tuple[float, float, float, float]) -> list[float]:
    if not bbox:
        return list(bounds)
    return [*map(min, bbox[:2], bounds[:2]), *map(max, bbox[2:], bounds[2:])]
