import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import ensure_department
from portal.core.database import session_scope
from portal.core.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    Unauthorized,
)
from portal.core.models import AuditEntry
from portal.core.principal import ANONYMOUS, Principal, Role, Visibility
from portal.core.tokens import authenticate_token
from portal.geo.edits import (
    EditResult,
    can_edit_layer,
    create_feature,
    delete_feature,
    feature_etag,
    feature_history,
    replace_feature,
    update_feature,
)
from portal.geo.loader import load_layer_from_file
from portal.geo.models import FeatureVersion, Layer
from portal.geo.registry import ensure_layer, share_layer
from tests.staff import make_staff

DEPARTMENT = "edits"
OTHER_DEPARTMENT = "edits_other"
PARTNER_DEPARTMENT = "edits_partner"
POINT_PROPERTIES = "名称, 幅員, 定員, 開設日, 更新日時, 有効"


def _collection(features: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features],
        },
        ensure_ascii=False,
    )


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


@pytest.fixture(scope="module")
def layers(
    engine: Engine, sessions: sessionmaker[Session], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Small layers of our own, so the shared demo layers stay untouched."""
    root = tmp_path_factory.mktemp("edits")
    sources = {
        "edits_points": _collection(
            [
                (
                    {
                        "名称": "市役所",
                        "幅員": 5.5,
                        "定員": 120,
                        "開設日": "2020-04-01",
                        "更新日時": "2024-04-01T09:00:00+09:00",
                        "有効": True,
                    },
                    _point(131.49, 33.28),
                ),
                (
                    {
                        "名称": "公民館",
                        "幅員": 3.0,
                        "定員": 40,
                        "開設日": "2018-10-01",
                        "更新日時": "2024-04-02T09:00:00+09:00",
                        "有効": False,
                    },
                    _point(131.50, 33.29),
                ),
            ]
        ),
        "edits_lines": _collection(
            [
                (
                    {"路線名": "中央通り"},
                    {
                        "type": "MultiLineString",
                        "coordinates": [[[131.48, 33.28], [131.49, 33.29]]],
                    },
                )
            ]
        ),
        "edits_areas": _collection(
            [
                (
                    {"地区名": "中央"},
                    {
                        "type": "Polygon",
                        "coordinates": [
                            [[131.4, 33.2], [131.5, 33.2], [131.5, 33.3], [131.4, 33.2]]
                        ],
                    },
                )
            ]
        ),
        "edits_private": _collection([({"名称": "配水池"}, _point(131.47, 33.27))]),
    }
    with session_scope(sessions) as session:
        department = ensure_department(session, slug=DEPARTMENT, name="編集試験課", name_en=None)
        ensure_department(session, slug=OTHER_DEPARTMENT, name="別課", name_en=None)
        partner = ensure_department(session, slug=PARTNER_DEPARTMENT, name="連携課", name_en=None)
        for layer_id in [*sources, "edits_table"]:
            ensure_layer(
                session,
                layer_id=layer_id,
                title=layer_id,
                title_en=None,
                department_id=department,
                visibility=Visibility.department
                if layer_id == "edits_private"
                else Visibility.public,
            )
        share_layer(session, layer_id="edits_private", department_ids=[partner])
    for layer_id, content in sources.items():
        path = root / f"{layer_id}.geojson"
        path.write_text(content, encoding="utf-8")
        load_layer_from_file(engine, layer_id=layer_id, path=path)
    table = root / "edits_table.csv"
    table.write_text("町丁名,世帯数\n中央町,120\n", encoding="utf-8")
    load_layer_from_file(engine, layer_id="edits_table", path=table)


def _principal(
    sessions: sessionmaker[Session],
    department: str | None,
    role: Role = Role.viewer,
    site_admin: bool = False,
) -> Principal:
    staff = make_staff(sessions, department=department, role=role, site_admin=site_admin)
    with session_scope(sessions) as session:
        return authenticate_token(session, staff.token, ip=None)


@pytest.fixture(scope="module")
def editor(layers: None, sessions: sessionmaker[Session]) -> Principal:
    return _principal(sessions, DEPARTMENT, Role.editor)


@pytest.fixture(scope="module")
def viewer(layers: None, sessions: sessionmaker[Session]) -> Principal:
    return _principal(sessions, DEPARTMENT, Role.viewer)


@pytest.fixture(scope="module")
def outsider(layers: None, sessions: sessionmaker[Session]) -> Principal:
    return _principal(sessions, OTHER_DEPARTMENT, Role.admin)


def _stored(engine: Engine, layer_id: str, fid: int) -> tuple[dict[str, Any], str | None] | None:
    with engine.connect() as connection:
        row = connection.execute(
            text(
                f"SELECT to_jsonb(t) - 'fid' - 'geom', ST_AsText(t.geom) FROM layers.{layer_id} AS t WHERE t.fid = :fid"
            ),
            {"fid": fid},
        ).first()
    return None if row is None else (row[0], row[1])


def _layer(sessions: sessionmaker[Session], layer_id: str) -> Layer:
    with sessions() as session:
        layer = session.get(Layer, layer_id)
        assert layer is not None
        return layer


def _new_point(engine: Engine, editor: Principal, **properties: Any) -> EditResult:
    return create_feature(
        engine,
        editor,
        layer_id="edits_points",
        feature={"type": "Feature", "properties": properties, "geometry": _point(131.495, 33.285)},
    )


def test_an_editor_creates_a_feature_and_the_layer_history_and_audit_record_it(
    engine: Engine, sessions: sessionmaker[Session], editor: Principal
) -> None:
    before = _layer(sessions, "edits_points")
    result = create_feature(
        engine,
        editor,
        layer_id="edits_points",
        feature={
            "type": "Feature",
            "id": 1,
            "properties": {
                "名称": "防災倉庫（仮設）",
                "幅員": 2.25,
                "定員": 15,
                "開設日": "2025-01-06",
                "更新日時": "2025-01-06T10:30:00+09:00",
                "有効": True,
            },
            "geometry": _point(131.52, 33.31),
        },
        ip="192.0.2.7",
    )
    assert result.fid > 2
    assert _stored(engine, "edits_points", result.fid) == (
        {
            "名称": "防災倉庫（仮設）",
            "幅員": 2.25,
            "定員": 15,
            "開設日": "2025-01-06",
            "更新日時": "2025-01-06T01:30:00+00:00",
            "有効": True,
        },
        "POINT(131.52 33.31)",
    )
    assert result.etag == feature_etag(engine, editor, "edits_points", result.fid)
    assert result.etag is not None and result.etag.startswith('"') and len(result.etag) == 34
    after = _layer(sessions, "edits_points")
    assert after.revision == before.revision + 1
    assert after.feature_count == before.feature_count + 1
    assert after.bbox is not None and after.bbox[2:] == [131.52, 33.31]
    with sessions() as session:
        version = session.execute(
            select(FeatureVersion).where(
                FeatureVersion.layer_id == "edits_points", FeatureVersion.fid == result.fid
            )
        ).scalar_one()
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.target == f"layer:edits_points/{result.fid}")
        ).scalar_one()
    assert (version.operation, version.layer_version, version.actor, version.user_id) == (
        "create",
        1,
        "試験 edits",
        editor.user_id,
    )
    assert version.properties is not None and version.properties["名称"] == "防災倉庫（仮設）"
    assert version.geometry == {"type": "Point", "coordinates": [131.52, 33.31]}
    assert (entry.action, entry.actor, entry.actor_user_id, entry.ip) == (
        "feature.created",
        "試験 edits",
        editor.user_id,
        "192.0.2.7",
    )


def test_replace_sets_left_out_properties_to_null_and_keeps_the_fid(
    engine: Engine, sessions: sessionmaker[Session], editor: Principal
) -> None:
    created = _new_point(engine, editor, 名称="旧名称", 定員=10, 有効=True)
    count = _layer(sessions, "edits_points").feature_count
    replaced = replace_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=created.fid,
        feature={
            "type": "Feature",
            "id": str(created.fid),
            "properties": {"名称": "新名称"},
            "geometry": _point(131.5, 33.3),
        },
        if_match=created.etag,
    )
    assert replaced.fid == created.fid and replaced.etag != created.etag
    assert _stored(engine, "edits_points", created.fid) == (
        {
            "名称": "新名称",
            "幅員": None,
            "定員": None,
            "開設日": None,
            "更新日時": None,
            "有効": None,
        },
        "POINT(131.5 33.3)",
    )
    assert _layer(sessions, "edits_points").feature_count == count


def test_a_merge_patch_changes_only_the_given_properties_and_null_clears_one(
    engine: Engine, sessions: sessionmaker[Session], editor: Principal
) -> None:
    created = _new_point(engine, editor, 名称="消防団詰所", 幅員=4.0, 定員=8)
    revision = _layer(sessions, "edits_points").revision
    updated = update_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=created.fid,
        patch={"properties": {"名称": "消防団第二分団詰所", "定員": None}},
        if_match=created.etag,
    )
    assert _stored(engine, "edits_points", created.fid) == (
        {
            "名称": "消防団第二分団詰所",
            "幅員": 4.0,
            "定員": None,
            "開設日": None,
            "更新日時": None,
            "有効": None,
        },
        "POINT(131.495 33.285)",
    )
    assert updated.etag == feature_etag(engine, editor, "edits_points", created.fid)
    assert _layer(sessions, "edits_points").revision == revision + 1


def test_a_patch_with_a_geometry_moves_the_feature_and_extends_the_bbox(
    engine: Engine, sessions: sessionmaker[Session], editor: Principal
) -> None:
    created = _new_point(engine, editor, 名称="移転予定")
    update_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=created.fid,
        patch={"geometry": _point(131.40, 33.20)},
    )
    assert _stored(engine, "edits_points", created.fid) == (
        {
            "名称": "移転予定",
            "幅員": None,
            "定員": None,
            "開設日": None,
            "更新日時": None,
            "有効": None,
        },
        "POINT(131.4 33.2)",
    )
    bbox = _layer(sessions, "edits_points").bbox
    assert bbox is not None and bbox[:2] == [131.40, 33.20]


def test_deleting_removes_the_feature_and_the_history_keeps_every_step(
    engine: Engine, sessions: sessionmaker[Session], editor: Principal
) -> None:
    created = _new_point(engine, editor, 名称="廃止予定")
    updated = update_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=created.fid,
        patch={"properties": {"有効": False}},
    )
    count = _layer(sessions, "edits_points").feature_count
    deleted = delete_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=created.fid,
        if_match=updated.etag,
        ip="192.0.2.8",
    )
    assert deleted == EditResult(created.fid, None)
    assert _stored(engine, "edits_points", created.fid) is None
    assert _layer(sessions, "edits_points").feature_count == count - 1
    with pytest.raises(NotFound) as missing:
        feature_etag(engine, editor, "edits_points", created.fid)
    assert missing.value.message == f"feature {created.fid} not found in layer 'edits_points'"
    with sessions() as session:
        history = feature_history(session, editor, "edits_points", created.fid)
        actions = (
            session.execute(
                select(AuditEntry.action)
                .where(AuditEntry.target == f"layer:edits_points/{created.fid}")
                .order_by(AuditEntry.id)
            )
            .scalars()
            .all()
        )
    assert [change.operation for change in history] == ["delete", "update", "create"]
    assert history[0].properties is not None and history[0].properties["名称"] == "廃止予定"
    assert history[0].properties["有効"] is False
    assert history[0].geometry == {"type": "Point", "coordinates": [131.495, 33.285]}
    assert {change.actor for change in history} == {"試験 edits"}
    assert actions == ["feature.created", "feature.updated", "feature.deleted"]


@pytest.mark.parametrize("operation", ["replace", "update", "delete"])
def test_a_missing_feature_is_not_found(engine: Engine, editor: Principal, operation: str) -> None:
    feature: dict[str, Any] = {"type": "Feature", "properties": {}, "geometry": None}
    with pytest.raises(NotFound) as missing:
        if operation == "replace":
            replace_feature(engine, editor, layer_id="edits_points", fid=99999, feature=feature)
        elif operation == "update":
            update_feature(engine, editor, layer_id="edits_points", fid=99999, patch=feature)
        else:
            delete_feature(engine, editor, layer_id="edits_points", fid=99999)
    assert missing.value.message == "feature 99999 not found in layer 'edits_points'"


def test_a_linestring_is_stored_as_a_multilinestring_in_a_multilinestring_layer(
    engine: Engine, editor: Principal
) -> None:
    result = create_feature(
        engine,
        editor,
        layer_id="edits_lines",
        feature={
            "type": "Feature",
            "properties": {"路線名": "駅前通り"},
            "geometry": {"type": "LineString", "coordinates": [[131.48, 33.28], [131.485, 33.285]]},
        },
    )
    assert _stored(engine, "edits_lines", result.fid) == (
        {"路線名": "駅前通り"},
        "MULTILINESTRING((131.48 33.28,131.485 33.285))",
    )


def test_a_plane_zone_position_sent_northing_first_is_stored_as_longitude_latitude(
    engine: Engine, editor: Principal
) -> None:
    result = create_feature(
        engine,
        editor,
        layer_id="edits_points",
        feature={
            "type": "Feature",
            "properties": {"名称": "基準点"},
            "geometry": {"type": "Point", "coordinates": [1000, 2000]},
        },
        srid=6670,
        lat_first=True,
    )
    stored = _stored(engine, "edits_points", result.fid)
    assert stored is not None and stored[1] is not None
    lon, lat = (float(n) for n in stored[1].removeprefix("POINT(").rstrip(")").split())
    # 2 km east and 1 km north of zone II's origin at 131°E 33°N.
    assert lon == pytest.approx(131.021405, abs=1e-6) and lat == pytest.approx(33.009016, abs=1e-6)
    moved = update_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=result.fid,
        patch={"geometry": {"type": "Point", "coordinates": [33.3, 131.5]}},
        srid=4326,
        lat_first=True,
    )
    assert moved.fid == result.fid
    stored = _stored(engine, "edits_points", result.fid)
    assert stored is not None and stored[1] == "POINT(131.5 33.3)"


def _refusal(
    engine: Engine, editor: Principal, layer_id: str, feature: object, **options: Any
) -> str:
    with pytest.raises(InvalidInput) as refused:
        create_feature(engine, editor, layer_id=layer_id, feature=feature, **options)  # type: ignore[arg-type]
    return refused.value.message


def test_a_geometry_of_the_wrong_type_is_refused_naming_both_types(
    engine: Engine, editor: Principal
) -> None:
    polygon = {
        "type": "Polygon",
        "coordinates": [[[131.4, 33.2], [131.5, 33.2], [131.5, 33.3], [131.4, 33.2]]],
    }
    assert _refusal(
        engine, editor, "edits_lines", {"type": "Feature", "properties": {}, "geometry": polygon}
    ) == ("layer 'edits_lines' holds MultiLineString geometries; got Polygon")


def test_a_self_intersecting_polygon_is_refused_with_postgis_reason(
    engine: Engine, editor: Principal
) -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[131, 33], [132, 34], [132, 33], [131, 34], [131, 33]]],
    }
    assert _refusal(
        engine, editor, "edits_areas", {"type": "Feature", "properties": {}, "geometry": bowtie}
    ) == (
        "the geometry is invalid (Self-intersection[131.5 33.5]); repair it "
        "(for example with QGIS's Fix Geometries) and send it again"
    )


def test_an_unknown_property_is_refused_with_the_layers_properties(
    engine: Engine, editor: Principal
) -> None:
    feature = {"type": "Feature", "properties": {"foo": 1}, "geometry": None}
    assert _refusal(engine, editor, "edits_points", feature) == (
        f"unknown property 'foo'; the layer's properties are: {POINT_PROPERTIES}"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("幅員", "wide", "property '幅員' must be a number; got 'wide'"),
        ("定員", 1.5, "property '定員' must be a whole number; got 1.5"),
        (
            "定員",
            2**31,
            "property '定員' must be a whole number from -2147483648 to 2147483647; got 2147483648",
        ),
        ("有効", "はい", "property '有効' must be true or false; got 'はい'"),
        (
            "開設日",
            "2024/04/01",
            "property '開設日' must be a date such as 2024-04-01; got '2024/04/01'",
        ),
        (
            "更新日時",
            "2024-04-01T09:00:00",
            "property '更新日時' must be a date and time with a UTC offset such as "
            "2024-04-01T09:00:00+09:00; got '2024-04-01T09:00:00'",
        ),
        ("名称", 12, "property '名称' must be text; got 12"),
        ("名称", ["a"], "property '名称' must be text; got [\"a\"]"),
    ],
)
def test_a_value_that_does_not_fit_its_column_is_refused(
    engine: Engine, editor: Principal, name: str, value: object, message: str
) -> None:
    feature = {"type": "Feature", "properties": {name: value}, "geometry": None}
    assert _refusal(engine, editor, "edits_points", feature) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the body must be a GeoJSON Feature object; got an array"),
        (
            {"type": "FeatureCollection", "features": []},
            'the body must be a GeoJSON Feature ("type": "Feature"); got \'FeatureCollection\'',
        ),
        (
            {"type": "Feature", "properties": [], "geometry": None},
            '"properties" must be an object or null; got an array',
        ),
        (
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [200, 33]},
            },
            "position [200, 33] is off the globe: CRS84 coordinates are sent as longitude, latitude "
            "(longitude -180..180, latitude -90..90)",
        ),
        (
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [131.5, None]},
            },
            "coordinates must be finite numbers; got [131.5, null]",
        ),
        (
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Circle", "coordinates": [131.5, 33]},
            },
            "unknown geometry type 'Circle'; use one of Point, MultiPoint, LineString, MultiLineString, "
            "Polygon, MultiPolygon, GeometryCollection",
        ),
    ],
)
def test_a_body_that_is_not_a_usable_feature_is_refused(
    engine: Engine, editor: Principal, body: object, message: str
) -> None:
    assert _refusal(engine, editor, "edits_points", body) == message


def test_a_position_far_outside_a_plane_zone_is_refused(engine: Engine, editor: Principal) -> None:
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [3_000_000, 0]},
    }
    assert _refusal(engine, editor, "edits_points", feature, srid=6670, lat_first=True) == (
        "the geometry lies outside the area EPSG:6670 is defined for "
        "(longitude 129.76..132.05, latitude 30.18..33.99); check the CRS and the axis order"
    )


def test_a_geometry_with_too_many_vertices_is_refused_as_too_large(
    engine: Engine, editor: Principal
) -> None:
    line = [[131.0 + i * 1e-6, 33.0] for i in range(100_001)]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "LineString", "coordinates": line},
    }
    with pytest.raises(PayloadTooLarge) as refused:
        create_feature(engine, editor, layer_id="edits_lines", feature=feature)
    assert (
        refused.value.message
        == "the geometry has 100,001 vertices; at most 100,000 are accepted in one feature"
    )


def test_a_table_without_geometries_refuses_a_geometry(engine: Engine, editor: Principal) -> None:
    feature = {"type": "Feature", "properties": {"町丁名": "東町"}, "geometry": _point(131.5, 33.3)}
    assert _refusal(engine, editor, "edits_table", feature) == (
        "layer 'edits_table' is a table without geometries; send \"geometry\": null"
    )
    created = create_feature(
        engine, editor, layer_id="edits_table", feature={**feature, "geometry": None}
    )
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT to_jsonb(t) - 'fid' FROM layers.edits_table AS t WHERE t.fid = :fid"),
            {"fid": created.fid},
        ).scalar_one()
    assert row == {"町丁名": "東町", "世帯数": None}


def test_an_id_in_the_body_must_match_the_url(engine: Engine, editor: Principal) -> None:
    created = _new_point(engine, editor, 名称="番号確認")
    with pytest.raises(InvalidInput) as refused:
        replace_feature(
            engine,
            editor,
            layer_id="edits_points",
            fid=created.fid,
            feature={"type": "Feature", "id": 99999, "properties": {}, "geometry": None},
        )
    assert refused.value.message == (
        f"the body names feature 99999 but the URL names feature {created.fid}; leave the id out or make them match"
    )


def test_a_stale_etag_is_refused_and_star_or_a_current_etag_passes(
    engine: Engine, editor: Principal
) -> None:
    created = _new_point(engine, editor, 名称="同時編集")
    fid = created.fid
    current = update_feature(
        engine, editor, layer_id="edits_points", fid=fid, patch={"properties": {"定員": 1}}
    ).etag
    with pytest.raises(PreconditionFailed) as stale:
        update_feature(
            engine,
            editor,
            layer_id="edits_points",
            fid=fid,
            patch={"properties": {"定員": 2}},
            if_match=created.etag,
        )
    assert stale.value.message == (
        f"feature {fid} of layer 'edits_points' has changed since you read it "
        f"(If-Match {created.etag}; its ETag is now {current}); fetch it again and retry"
    )
    stored = _stored(engine, "edits_points", fid)
    assert stored is not None and stored[0]["定員"] == 1
    update_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=fid,
        patch={"properties": {"定員": 3}},
        if_match="*",
    )
    now = feature_etag(engine, editor, "edits_points", fid)
    update_feature(
        engine,
        editor,
        layer_id="edits_points",
        fid=fid,
        patch={"properties": {"定員": 4}},
        if_match=f'"stale", W/{now}',
    )
    stored = _stored(engine, "edits_points", fid)
    assert stored is not None and stored[0]["定員"] == 4


def test_concurrent_updates_with_the_same_etag_let_exactly_one_win(
    engine: Engine, editor: Principal
) -> None:
    created = _new_point(engine, editor, 名称="競合")
    start = threading.Barrier(4)

    def attempt(capacity: int) -> str:
        start.wait()
        try:
            update_feature(
                engine,
                editor,
                layer_id="edits_points",
                fid=created.fid,
                patch={"properties": {"定員": capacity}},
                if_match=created.etag,
            )
        except PreconditionFailed:
            return "refused"
        return f"won {capacity}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, [1, 2, 3, 4]))
    winners = [outcome for outcome in outcomes if outcome.startswith("won")]
    assert len(winners) == 1 and outcomes.count("refused") == 3
    stored = _stored(engine, "edits_points", created.fid)
    assert stored is not None and winners == [f"won {stored[0]['定員']}"]


def test_an_edit_in_the_callers_session_is_undone_when_the_caller_rolls_back(
    sessions: sessionmaker[Session], editor: Principal
) -> None:
    before = _layer(sessions, "edits_points")
    with sessions() as session:
        created = create_feature(
            session,
            editor,
            layer_id="edits_points",
            feature={"type": "Feature", "properties": {"名称": "取消"}, "geometry": None},
        )
        session.rollback()
    after = _layer(sessions, "edits_points")
    assert (after.revision, after.feature_count) == (before.revision, before.feature_count)
    with sessions() as session:
        assert (
            session.execute(
                select(FeatureVersion).where(
                    FeatureVersion.layer_id == "edits_points", FeatureVersion.fid == created.fid
                )
            ).first()
            is None
        )


def test_a_viewer_cannot_edit_and_is_told_which_role_is_needed(
    engine: Engine, viewer: Principal
) -> None:
    with pytest.raises(Forbidden) as refused:
        create_feature(
            engine,
            viewer,
            layer_id="edits_points",
            feature={"type": "Feature", "properties": {}, "geometry": None},
        )
    assert (
        refused.value.message
        == "editing layer 'edits_points' needs the editor role in that department"
    )


def test_a_site_admin_may_edit_any_layer(
    engine: Engine, sessions: sessionmaker[Session], layers: None
) -> None:
    admin = _principal(sessions, None, site_admin=True)
    result = create_feature(
        engine,
        admin,
        layer_id="edits_private",
        feature={
            "type": "Feature",
            "properties": {"名称": "第二配水池"},
            "geometry": _point(131.46, 33.26),
        },
    )
    assert _stored(engine, "edits_private", result.fid) == (
        {"名称": "第二配水池"},
        "POINT(131.46 33.26)",
    )


def test_another_departments_staff_cannot_tell_a_department_layer_from_a_missing_one(
    engine: Engine, outsider: Principal
) -> None:
    feature: dict[str, Any] = {"type": "Feature", "properties": {}, "geometry": None}
    messages = []
    for layer_id in ("edits_private", "no_such_layer"):
        with pytest.raises(NotFound) as hidden:
            create_feature(engine, outsider, layer_id=layer_id, feature=feature)
        messages.append(hidden.value.message)
        with pytest.raises(NotFound) as hidden_etag:
            feature_etag(engine, outsider, layer_id, 1)
        assert hidden_etag.value.message == hidden.value.message
    assert messages == ["layer 'edits_private' not found", "layer 'no_such_layer' not found"]


def test_anonymous_callers_must_sign_in_to_edit_and_cannot_see_department_layers(
    engine: Engine, sessions: sessionmaker[Session], layers: None
) -> None:
    feature: dict[str, Any] = {"type": "Feature", "properties": {}, "geometry": None}
    with pytest.raises(Unauthorized) as refused:
        delete_feature(engine, ANONYMOUS, layer_id="edits_points", fid=1)
    assert refused.value.message == (
        "editing layer 'edits_points' needs a signed-in staff member; sign in or send an API token"
    )
    with pytest.raises(NotFound, match="^layer 'edits_private' not found$"):
        create_feature(engine, ANONYMOUS, layer_id="edits_private", feature=feature)
    with (
        sessions() as session,
        pytest.raises(Unauthorized, match="edit history of layer 'edits_points' is for staff"),
    ):
        feature_history(session, ANONYMOUS, "edits_points", 1)


def test_an_editor_of_a_department_the_layer_is_shared_with_may_read_but_not_edit(
    engine: Engine, sessions: sessionmaker[Session], layers: None
) -> None:
    partner = _principal(sessions, PARTNER_DEPARTMENT, Role.editor)
    assert feature_etag(engine, partner, "edits_private", 1).startswith('"')
    with pytest.raises(Forbidden) as refused:
        update_feature(
            engine, partner, layer_id="edits_private", fid=1, patch={"properties": {"名称": "x"}}
        )
    assert (
        refused.value.message
        == "editing layer 'edits_private' needs the editor role in that department"
    )


def test_a_refused_geometry_leaves_the_callers_session_usable(
    sessions: sessionmaker[Session], editor: Principal
) -> None:
    far = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [1e9, 1e9]},
    }
    with session_scope(sessions) as session:
        with pytest.raises(InvalidInput) as refused:
            create_feature(session, editor, layer_id="edits_points", feature=far, srid=6677)
        created = create_feature(
            session,
            editor,
            layer_id="edits_points",
            feature={**far, "properties": {"名称": "後続"}, "geometry": None},
        )
    assert refused.value.message.startswith(
        "the geometry cannot be read as EPSG:6677 coordinates (transform: "
    )
    assert refused.value.message.endswith("); check the CRS and the axis order")
    with sessions() as session:
        history = feature_history(session, editor, "edits_points", created.fid)
    assert [(c.operation, c.properties and c.properties["名称"]) for c in history] == [
        ("create", "後続")
    ]


def test_can_edit_layer_tells_who_may_edit_for_the_allow_header(
    sessions: sessionmaker[Session], editor: Principal, viewer: Principal, outsider: Principal
) -> None:
    with sessions() as session:
        assert can_edit_layer(session, editor, "edits_points") is True
        assert can_edit_layer(session, viewer, "edits_points") is False
        assert can_edit_layer(session, ANONYMOUS, "edits_points") is False
        assert can_edit_layer(session, outsider, "edits_points") is False
        with pytest.raises(NotFound, match="^layer 'edits_private' not found$"):
            can_edit_layer(session, outsider, "edits_private")
