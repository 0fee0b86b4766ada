"""Helpers for the OGC API tests: a small editable layer and GDAL command runners."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import ensure_department
from portal.catalog.models import Department
from portal.core.database import session_scope
from portal.core.principal import Visibility
from portal.geo.loader import load_layer_from_file
from portal.geo.registry import ensure_layer

BEPPU_CITY_HALL = (131.4914, 33.2846)


def load_points_layer(
    engine: Engine,
    sessions: sessionmaker[Session],
    tmp: Path,
    *,
    layer_id: str,
    department: str = "doboku",
    points: list[tuple[float, float, str]] | None = None,
) -> str:
    """Load a small public point layer (名称, 種別 and a point each) owned by `department`."""
    rows = points or [
        (BEPPU_CITY_HALL[0], BEPPU_CITY_HALL[1], "別府市役所"),
        (131.5000, 33.2790, "別府駅"),
        (131.4700, 33.3150, "鉄輪"),
    ]
    features = [
        {
            "type": "Feature",
            "properties": {"名称": name, "種別": "施設", "番号": number},
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
        }
        for number, (lon, lat, name) in enumerate(rows, start=1)
    ]
    path = tmp / f"{layer_id}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    with session_scope(sessions) as session:
        department_id = session.scalar(select(Department.id).where(Department.slug == department))
        if department_id is None:
            department_id = ensure_department(
                session, slug=department, name=department, name_en=None
            )
        ensure_layer(
            session,
            layer_id=layer_id,
            title=f"試験用 {layer_id}",
            title_en=None,
            department_id=department_id,
            visibility=Visibility.public,
        )
    load_layer_from_file(engine, layer_id=layer_id, path=path)
    return layer_id


def gdal(*args: str, token: str | None = None) -> str:
    """Run a GDAL command and return its standard output (fail with its error output)."""
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF"}
    if token:
        env["GDAL_HTTP_HEADERS"] = f"Authorization: Bearer {token}"
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


READ_OAPIF = """
import json, sys
import pyogrio
url, layer, options, where = json.loads(sys.argv[1])
frame = pyogrio.read_dataframe(f"OAPIF:{url}", layer=layer, where=where, **options)
points = [[g.x, g.y] if g is not None and g.geom_type == "Point" else None for g in frame.geometry]
print(json.dumps({"epsg": frame.crs.to_epsg() if frame.crs else None, "count": len(frame), "points": points}))
"""


def read_with_current_gdal(
    url: str, layer: str, *, where: str | None = None, **options: str
) -> dict[str, Any]:
    """Read a layer through the OAPIF driver of the GDAL bundled with pyogrio (newer than the CLI).

    It runs in a subprocess: GDAL keeps the interpreter lock while it waits on HTTP, which would
    stall the test server's thread in this process.
    """
    argument = json.dumps([url, layer, options, where])
    done = subprocess.run(
        [sys.executable, "-c", READ_OAPIF, argument], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"pyogrio failed:\n{done.stderr}"
    return json.loads(done.stdout)
