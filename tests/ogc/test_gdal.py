"""GDAL's OAPIF driver (the one QGIS uses) against the live portal."""

import re
import shutil
from pathlib import Path

import pyogrio
import pytest
from pyproj import Transformer
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal.core.database import session_scope
from portal.core.principal import ANONYMOUS
from portal.geo.registry import list_layers
from tests.conftest import LiveServer
from tests.ogc.support import gdal, read_with_current_gdal
from tests.staff import make_staff

pytestmark = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL is not installed")
LAYER_LINE = re.compile(r"^\d+: (\w+)", re.MULTILINE)


def _layers(url: str, token: str | None = None) -> set[str]:
    return set(LAYER_LINE.findall(gdal("ogrinfo", "-ro", "-q", f"OAPIF:{url}/ogc", token=token)))


def test_ogrinfo_lists_exactly_the_public_layers_for_anonymous(
    demo_city: object, live_server: LiveServer, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        public = {layer.id for layer in list_layers(session, ANONYMOUS)}
    assert "water_mains" not in public
    assert _layers(live_server.url) == public


def test_ogrinfo_lists_the_department_layer_with_a_staff_token(
    demo_city: object, live_server: LiveServer, sessions: sessionmaker[Session]
) -> None:
    staff = make_staff(sessions, department="suido")
    listed = _layers(live_server.url, token=staff.token)
    assert "water_mains" in listed
    assert {"roads", "zoning"} <= listed


def test_ogr2ogr_copies_roads_with_every_feature(
    demo_city: object, live_server: LiveServer, engine: Engine, tmp_path: Path
) -> None:
    target = tmp_path / "roads.gpkg"
    gdal("ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{live_server.url}/ogc", "roads")
    with engine.connect() as connection:
        expected = connection.scalar(text("SELECT count(*) FROM layers.roads"))
    info = pyogrio.read_info(target, layer="roads")
    assert info["features"] == expected
    assert "路線名" in list(info["fields"])


def test_bbox_and_attribute_filters_are_answered_by_the_server(
    demo_city: object, live_server: LiveServer, engine: Engine
) -> None:
    with engine.connect() as connection:
        kind = connection.scalar(text('SELECT "路線種別" FROM layers.roads LIMIT 1'))
        expected = connection.scalar(
            text(
                'SELECT count(*) FROM layers.roads WHERE "路線種別" = :kind AND geom && '
                "ST_MakeEnvelope(131.47, 33.26, 131.51, 33.30, 4326)"
            ),
            {"kind": kind},
        )
    mark = len(live_server.requests.lines)
    output = gdal(
        "ogrinfo",
        "-ro",
        "-so",
        f"OAPIF:{live_server.url}/ogc",
        "roads",
        "-spat",
        "131.47",
        "33.26",
        "131.51",
        "33.30",
        "-where",
        f"\"路線種別\" = '{kind}'",
        "-oo",
        "PAGE_SIZE=1000",
    )
    count = int(re.search(r"Feature Count: (\d+)", output).group(1))  # type: ignore[union-attr]
    assert count == expected
    items = [line for line in live_server.requests.since(mark) if "/items" in line]
    assert items, "GDAL asked for no items"
    assert all("bbox=131.4" in line for line in items[1:]), items
    assert all(f"路線種別={kind}" in line or "filter=" in line for line in items[1:]), items


def test_the_crs_open_option_gives_plane_rectangular_coordinates(
    demo_city: object, live_server: LiveServer, engine: Engine
) -> None:
    # Debian's ogr2ogr (GDAL 3.6) predates the OAPIF CRS option; pyogrio's GDAL has it.
    with engine.connect() as connection:
        lon, lat = connection.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM layers.evacuation_sites ORDER BY fid LIMIT 1")
        ).one()
    mark = len(live_server.requests.lines)
    read = read_with_current_gdal(f"{live_server.url}/ogc", "evacuation_sites", CRS="EPSG:6670")
    assert read["epsg"] == 6670
    x, y = read["points"][0]
    # x = easting (Y in Japanese survey terms), y = northing (X): GIS order in GDAL.
    easting, northing = Transformer.from_crs(4326, 6670, always_xy=True).transform(lon, lat)
    assert x == pytest.approx(easting, abs=0.5)
    assert y == pytest.approx(northing, abs=0.5)
    assert 30_000 < northing < 34_000 and 40_000 < easting < 50_000
    items = [line for line in live_server.requests.since(mark) if "/items" in line]
    assert any("crs=http://www.opengis.net/def/crs/EPSG/0/6670" in line for line in items), items


def test_a_current_gdal_also_filters_on_the_server(
    demo_city: object, live_server: LiveServer, engine: Engine
) -> None:
    with engine.connect() as connection:
        kind = connection.scalar(text('SELECT "路線種別" FROM layers.roads ORDER BY fid LIMIT 1'))
        expected = connection.scalar(
            text('SELECT count(*) FROM layers.roads WHERE "路線種別" = :kind'), {"kind": kind}
        )
    mark = len(live_server.requests.lines)
    read = read_with_current_gdal(
        f"{live_server.url}/ogc", "roads", where=f"\"路線種別\" = '{kind}'"
    )
    assert read["count"] == expected > 0
    items = [line for line in live_server.requests.since(mark) if "/items" in line]
    assert all(f"路線種別={kind}" in line for line in items[1:]), items
