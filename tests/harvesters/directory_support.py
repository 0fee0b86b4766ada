"""Helpers for the directory harvester tests: sources, lookups, and small files to drop."""

import shutil
import uuid
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pyogrio
import pytest
import shapely
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import get_dataset
from portal.catalog.departments import ensure_department
from portal.catalog.views import DatasetView
from portal.core.database import session_scope
from portal.core.principal import SYSTEM, Visibility
from portal.demo.city import DEPARTMENTS
from portal.geo.models import Layer
from tests.harvest_support import HarvestOutcome, add_source

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="shared/data/real is not beside the repo")
PLACES = [
    ("別府市役所", 131.4914, 33.2846),
    ("別府駅", 131.5007, 33.2794),
    ("鉄輪温泉", 131.4763, 33.3149),
]


def ensure_departments(sessions: sessionmaker[Session]) -> None:
    """Create the demo city's departments (sources belong to one)."""
    with session_scope(sessions) as session:
        for department in DEPARTMENTS:
            ensure_department(
                session, slug=department.slug, name=department.name, name_en=department.name_en
            )


def source(sessions: sessionmaker[Session], folder: Path, **config: Any) -> str:
    """Register a directory source on a folder, with a fresh name.

    Its datasets are department-only and their derived names carry the source name, so that
    the session's shared catalog (which the leak tests inspect) keeps its demo datasets.
    """
    name = f"dir-{uuid.uuid4().hex[:8]}"
    config.setdefault("name_prefix", name)
    add_source(
        sessions,
        name=name,
        kind="directory",
        url=str(folder),
        visibility=Visibility.department,
        config=config,
    )
    return name


def dataset_for(
    sessions: sessionmaker[Session], outcome: HarvestOutcome, remote_id: str
) -> DatasetView:
    """The dataset a harvested object became."""
    found = next(o for o in outcome.objects if o.remote_id == remote_id)
    assert found.dataset_id is not None, found.message
    with session_scope(sessions) as session:
        return get_dataset(session, SYSTEM, str(found.dataset_id))


def layers_of(sessions: sessionmaker[Session], dataset: DatasetView) -> list[Layer]:
    """The layers behind a dataset's layer resources."""
    ids = [r.layer_id for r in dataset.resources if r.layer_id]
    with session_scope(sessions) as session:
        layers = [session.get(Layer, layer_id) for layer_id in ids]
        session.expunge_all()
    return [layer for layer in layers if layer is not None]


def only(outcome: HarvestOutcome, status: str) -> list[str]:
    """The remote ids with one outcome."""
    return [o.remote_id for o in outcome.by_status(status)]


def message_of(outcome: HarvestOutcome, remote_id: str) -> str:
    """The failure message of one object."""
    found = next(o for o in outcome.objects if o.remote_id == remote_id)
    assert found.status == "failed", (found.status, found.message)
    return found.message or ""


def scalar(database_url: str, query: str) -> Any:
    """One value from the database."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(query).fetchone()
    assert row is not None
    return row[0]


def copy_real(target: Path, *names: str) -> None:
    """Copy real files (folders with their sidecars) without their read-only modes."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        source_path = REAL / name
        if source_path.is_dir():
            (target / name).mkdir(exist_ok=True)
            for part in source_path.iterdir():
                shutil.copyfile(part, target / name / part.name)
        else:
            shutil.copyfile(source_path, target / name)


def places_frame(crs: int = 6668) -> gpd.GeoDataFrame:
    """Three Beppu places as points."""
    frame = gpd.GeoDataFrame(
        {"名称": [p[0] for p in PLACES]},
        geometry=[shapely.Point(lon, lat) for _, lon, lat in PLACES],
        crs=4326,
    )
    return frame.to_crs(crs)


def write_shapefile(path: Path, *, encoding: str = "CP932") -> None:
    """A small point Shapefile with Japanese attributes (and a .cpg naming `encoding`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(places_frame(), path, encoding=encoding)


def write_csv(path: Path, rows: list[tuple[str, str, str]], *, encoding: str = "utf-8") -> None:
    """A CSV with 名称,緯度,経度 rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["名称,緯度,経度", *(",".join(row) for row in rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


def place_rows() -> list[tuple[str, str, str]]:
    """The three places as 名称, 緯度, 経度 text."""
    return [(name, str(lat), str(lon)) for name, lon, lat in PLACES]


def kml(placemarks: str, prolog: str = "") -> str:
    """A KML document around some placemarks."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
        f"{placemarks}</Document></kml>\n"
    )


def placemark(name: str, lon: float, lat: float) -> str:
    """One KML point placemark."""
    return (
        f"<Placemark><name>{name}</name><Point><coordinates>{lon},{lat}</coordinates>"
        "</Point></Placemark>"
    )
