"""OWSLib creates, updates and deletes features with a staff token (OGC API Features Part 4)."""

import json

import owslib.ogcapi
import pytest
from owslib.ogcapi.features import Features
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal.core.principal import Role
from tests.conftest import LiveServer
from tests.ogc.support import load_points_layer
from tests.staff import make_staff


@pytest.fixture(scope="module")
def layer_id(
    engine: Engine, sessions: sessionmaker[Session], tmp_path_factory: pytest.TempPathFactory
) -> str:
    return load_points_layer(
        engine, sessions, tmp_path_factory.mktemp("owslib"), layer_id="owslib_points"
    )


@pytest.fixture(autouse=True)
def owslib_headers():  # type: ignore[no-untyped-def]
    """OWSLib adds each client's headers to one module-wide dict; keep tokens from leaking."""
    saved = dict(owslib.ogcapi.REQUEST_HEADERS)
    yield
    owslib.ogcapi.REQUEST_HEADERS.clear()
    owslib.ogcapi.REQUEST_HEADERS.update(saved)


def test_owslib_creates_updates_and_deletes_a_feature(
    layer_id: str, live_server: LiveServer, sessions: sessionmaker[Session], engine: Engine
) -> None:
    editor = make_staff(sessions, department="doboku", role=Role.editor)
    api = Features(f"{live_server.url}/ogc", headers={"Authorization": f"Bearer {editor.token}"})
    feature = {
        "type": "Feature",
        "properties": {"名称": "新しいベンチ", "種別": "ベンチ", "番号": 10},
        "geometry": {"type": "Point", "coordinates": [131.4921, 33.2851]},
    }
    api.collection_item_create(layer_id, json.dumps(feature, ensure_ascii=False))
    location = api.response_headers["Location"]
    fid = location.rsplit("/", 1)[1]
    created = api.collection_item(layer_id, fid)
    assert created["properties"]["名称"] == "新しいベンチ"
    assert created["geometry"]["coordinates"] == pytest.approx([131.4921, 33.2851])

    feature["properties"]["名称"] = "改修したベンチ"
    api.collection_item_update(layer_id, fid, json.dumps(feature, ensure_ascii=False))
    assert api.collection_item(layer_id, fid)["properties"]["名称"] == "改修したベンチ"

    api.collection_item_delete(layer_id, fid)
    with engine.connect() as connection:
        left = connection.scalar(
            text(f"SELECT count(*) FROM layers.{layer_id} WHERE fid = :fid"), {"fid": int(fid)}
        )
        history = connection.execute(
            text(
                "SELECT operation, user_id FROM portal.feature_versions "
                "WHERE layer_id = :layer AND fid = :fid ORDER BY id"
            ),
            {"layer": layer_id, "fid": int(fid)},
        ).all()
    assert left == 0
    assert [operation for operation, _ in history] == ["create", "replace", "delete"]
    assert all(user_id == editor.user_id for _, user_id in history)


def test_owslib_without_a_token_cannot_edit(layer_id: str, live_server: LiveServer) -> None:
    api = Features(f"{live_server.url}/ogc")
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [131.49, 33.28]},
    }
    with pytest.raises(RuntimeError, match="sign in|token|Unauthorized|NotAuthorized"):
        api.collection_item_create(layer_id, json.dumps(feature))
