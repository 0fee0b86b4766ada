"""Loading the demo road ledger (道路台帳): ours against ogr2ogr and a bare COPY into PostGIS."""

import hashlib
import io
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio
import shapely
from psycopg import sql
from pyproj import Transformer
from sqlalchemy import Engine

import portal.demo as demo_package
from bench.db import bench_database, keyword_conninfo
from bench.harness import (
    BenchmarkResult,
    Contender,
    Options,
    Phases,
    Role,
    expect,
    patched,
    run_benchmark,
)
from portal.catalog.departments import ensure_department
from portal.core.database import create_db_engine, make_session_factory, session_scope
from portal.core.principal import Visibility
from portal.core.settings import Settings
from portal.demo.generator import generate_demo_city
from portal.geo import loader, writer
from portal.geo.columns import ColumnSpec, plan_columns
from portal.geo.loader import LoadResult, load_layer_from_file
from portal.geo.registry import ensure_layer
from portal.geo.sources import check_shapefile_complete

NAME = "load"
DESCRIPTION = "道路台帳 Shapefile → PostGIS: load_layer_from_file vs ogr2ogr vs bare COPY"
CACHE_DIR = Path(__file__).resolve().parents[1] / ".data" / "bench"
ROADS_FILE = "doboku/road_ledger.shp"
LAYER_ID = "roads"
SCHEMA = "bench"
OGR_TABLE = "ogr_roads"
FLOOR_TABLE = "floor_roads"
SAMPLE_FIELD = "路線名"
LINE_VERTEX = "ST_PointN(ST_GeometryN(geom, 1), 1)"
DEGREE_TOLERANCE = 1e-7  # about 1 cm: the same PROJ pipeline must land on the same spot
OGR2OGR = "ogr2ogr"
# Like for like with ours: reproject to 4326, COPY in one transaction, GiST index, lines stay
# lines, and plain text/float columns instead of varchar(n)/numeric(w,p) from the DBF widths.
OGR2OGR_OPTIONS = (
    "-t_srs EPSG:4326 -gt unlimited -lco GEOMETRY_NAME=geom -lco FID=fid "
    "-lco SPATIAL_INDEX=GIST -lco PRECISION=NO --config PG_USE_COPY YES"
)


@dataclass(frozen=True)
class Sample:
    """One row as the file says it should read back: fid, 路線名 and first vertex in 4326."""

    fid: int
    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Reference:
    """What every contender must end up with in the database."""

    features: int
    samples: list[Sample]


def run(options: Options, log: Callable[[str], None]) -> BenchmarkResult:
    """Run the load benchmark on a throwaway database and return its result."""
    path = demo_roads(options.scale, log)
    reference = read_reference(path)
    log(f"{NAME}: preparing the COPY text for the baseline (untimed)")
    columns, copy_text = floor_copy_text(path)
    with bench_database() as url:
        engine = create_db_engine(Settings(database_url=url))
        try:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))

            def load_ours() -> LoadResult:
                return load_layer_from_file(engine, layer_id=LAYER_ID, path=path)

            def check_ours(result: LoadResult) -> None:
                expect(
                    result.feature_count == reference.features,
                    f"LoadResult.feature_count {result.feature_count} != {reference.features}",
                )
                check_loaded(url, "layers", LAYER_ID, result.table_name, reference)

            contenders = [
                Contender(
                    "ours",
                    Role.ours,
                    run=load_ours,
                    check=check_ours,
                    setup=lambda: register_layer(url, engine),
                    description="portal.geo.loader.load_layer_from_file",
                ),
                Contender(
                    OGR2OGR,
                    Role.peer,
                    run=lambda: run_ogr2ogr(url, path),
                    check=lambda _: check_loaded(url, SCHEMA, OGR_TABLE, OGR_TABLE, reference),
                    setup=lambda: reset(url),
                    description="ogr2ogr -t_srs EPSG:4326, COPY, GiST",
                ),
                Contender(
                    "COPY floor",
                    Role.baseline,
                    run=lambda: copy_floor(url, columns, copy_text),
                    check=lambda _: check_loaded(url, SCHEMA, FLOOR_TABLE, FLOOR_TABLE, reference),
                    setup=lambda: reset(url),
                    description="prepared EWKB text: COPY, primary key, GiST",
                ),
            ]
            result = run_benchmark(
                NAME,
                f"load roads ({reference.features:,} features)",
                contenders,
                work=reference.features,
                unit="features",
                repeat=options.repeat,
                warmup=options.warmup,
                log=log,
            )
            if not result.ours.failed:
                register_layer(url, engine)
                result.notes.append(phase_note(load_ours))
            return result
        finally:
            engine.dispose()


def register_layer(url: str, engine: Engine) -> None:
    """Reset the database and register the roads layer, as an upload would before loading."""
    reset(url)
    with session_scope(make_session_factory(engine)) as session:
        department = ensure_department(session, slug="doboku", name="土木課", name_en=None)
        ensure_layer(
            session,
            layer_id=LAYER_ID,
            title="道路台帳",
            title_en="Road ledger",
            department_id=department,
            visibility=Visibility.public,
        )


def demo_roads(scale: int, log: Callable[[str], None]) -> Path:
    """Return the cached demo road ledger at `scale`, generating the demo city once if needed."""
    target = CACHE_DIR / f"scale{scale}"
    marker = target / "complete.json"
    path = target / ROADS_FILE
    stamp = {"scale": scale, "generator": generator_fingerprint()}
    if _cache_matches(marker, stamp) and all(
        path.with_suffix(suffix).is_file() for suffix in (".dbf", ".shx", ".prj", ".cpg")
    ):
        check_shapefile_complete(path)
        return path
    log(f"{NAME}: generating the demo city at scale {scale} into {target}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"scale{scale}-", dir=CACHE_DIR))
    try:
        generate_demo_city(staging, scale=scale)
        features = int(pyogrio.read_info(staging / ROADS_FILE)["features"])
        (staging / marker.name).write_text(json.dumps(stamp | {"features": features}))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def generator_fingerprint() -> str:
    """Hash the demo generator's source, so a changed generator invalidates the cache."""
    digest = hashlib.sha256()
    package = Path(demo_package.__file__).parent
    for source in sorted(
        [*package.glob("gen_*.py"), package / "generator.py", package / "city.py"]
    ):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def _cache_matches(marker: Path, stamp: dict[str, Any]) -> bool:
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and all(recorded.get(k) == v for k, v in stamp.items())


def read_reference(path: Path, field: str = SAMPLE_FIELD) -> Reference:
    """Read the feature count and three sample rows straight from the file with pyogrio."""
    info = pyogrio.read_info(path)
    count = int(info["features"])
    to_4326 = Transformer.from_crs(info["crs"], "EPSG:4326", always_xy=True)
    samples = []
    for index in sorted({0, count // 2, count - 1}):
        frame = pyogrio.read_dataframe(path, columns=[field], skip_features=index, max_features=1)
        x, y = shapely.get_coordinates(frame.geometry.iloc[0])[0]
        lon, lat = to_4326.transform(x, y)
        samples.append(Sample(index + 1, str(frame[field].iloc[0]), lon, lat))
    return Reference(count, samples)


def check_loaded(
    url: str,
    schema: str,
    relation: str,
    table: str,
    reference: Reference,
    *,
    field: str = SAMPLE_FIELD,
    vertex_sql: str = LINE_VERTEX,
) -> None:
    """Check count, SRID, a GiST index, and that sample rows read back right (Japanese, place)."""
    name = sql.Identifier(schema, relation)
    with psycopg.connect(url) as connection:
        row = connection.execute(
            sql.SQL("SELECT count(*), array_agg(DISTINCT ST_SRID(geom)) FROM {}").format(name)
        ).fetchone()
        assert row is not None
        expect(
            row[0] == reference.features,
            f"{row[0]} rows in {schema}.{relation}, expected {reference.features}",
        )
        expect(row[1] == [4326], f"SRIDs {row[1]} in {schema}.{relation}, expected [4326]")
        gist = connection.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
            "AND indexdef ILIKE '%%USING gist%%'",
            (schema, table),
        ).fetchone()
        expect(gist is not None and gist[0] == 1, f"no GiST index on {schema}.{table}")
        query = sql.SQL(
            "SELECT fid, {field}, ST_X(p), ST_Y(p) FROM (SELECT fid, {field}, {vertex} AS p "
            "FROM {name} WHERE fid = ANY(%s)) AS s"
        ).format(field=sql.Identifier(field), vertex=sql.SQL(vertex_sql), name=name)
        found = {
            r[0]: r[1:] for r in connection.execute(query, ([s.fid for s in reference.samples],))
        }
    for sample in reference.samples:
        expect(sample.fid in found, f"row fid={sample.fid} missing from {schema}.{relation}")
        text, lon, lat = found[sample.fid]
        expect(text == sample.name, f"fid={sample.fid}: {field} {text!r} != {sample.name!r}")
        expect(
            abs(lon - sample.lon) < DEGREE_TOLERANCE and abs(lat - sample.lat) < DEGREE_TOLERANCE,
            f"fid={sample.fid}: first vertex ({lon}, {lat}) != ({sample.lon}, {sample.lat})",
        )


def reset(url: str) -> None:
    """Drop every contender's output and checkpoint, so each run starts from the same state."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier("layers", LAYER_ID))
        )
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'layers' AND tablename LIKE %s",
            (f"\\_v%\\_{LAYER_ID}",),
        ).fetchall()
        for (table,) in tables:
            connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("layers", table)))
        connection.execute("DELETE FROM portal.layers WHERE id = %s", (LAYER_ID,))
        for table in (OGR_TABLE, FLOOR_TABLE):
            connection.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(SCHEMA, table))
            )
        connection.execute("CHECKPOINT")


def run_ogr2ogr(url: str, path: Path) -> None:
    """Load the file with ogr2ogr: same reprojection, COPY, one transaction, GiST index."""
    command = [OGR2OGR, "-f", "PostgreSQL", "PG:" + keyword_conninfo(url), str(path)]
    command += ["-nln", OGR_TABLE, "-lco", f"SCHEMA={SCHEMA}", *OGR2OGR_OPTIONS.split()]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"ogr2ogr exited with {completed.returncode}: {completed.stderr}")


def floor_copy_text(path: Path) -> tuple[list[ColumnSpec], bytes]:
    """Prepare, untimed, the rows as COPY csv text: attributes then hex EWKB in EPSG:4326."""
    meta, table = pyogrio.read_arrow(path)
    geometry_name = meta.get("geometry_name") or "wkb_geometry"
    columns = plan_columns(table.schema, geometry_name)
    to_4326 = Transformer.from_crs(meta["crs"], "EPSG:4326", always_xy=True)
    geometries = shapely.from_wkb(table.column(geometry_name).to_numpy())

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(to_4326.transform(coords[:, 0], coords[:, 1]))

    geometries = shapely.set_srid(shapely.transform(geometries, project), 4326)
    ewkb = shapely.to_wkb(geometries, hex=True, include_srid=True)
    arrays = [table.column(c.source) for c in columns] + [pa.array(ewkb, type=pa.string())]
    rows = pa.table(arrays, names=[c.name for c in columns] + ["geom"])
    buffer = io.BytesIO()
    pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False))
    return columns, buffer.getvalue()


def copy_floor(url: str, columns: list[ColumnSpec], copy_text: bytes) -> None:
    """Create the table, COPY the prepared text, add the key and the GiST index, commit."""
    table = sql.Identifier(SCHEMA, FLOOR_TABLE)
    definitions: list[sql.Composable] = [sql.SQL("fid bigint GENERATED BY DEFAULT AS IDENTITY")]
    definitions += [
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in columns
    ]
    definitions.append(sql.SQL("geom geometry(Geometry, 4326)"))
    names = sql.SQL(", ").join([sql.Identifier(c.name) for c in columns] + [sql.Identifier("geom")])
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(definitions))
        )
        with cursor.copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, names)
        ) as copy:
            copy.write(copy_text)
        cursor.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (fid)").format(table))
        cursor.execute(
            sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(
                sql.Identifier(f"{FLOOR_TABLE}_geom_idx"), table
            )
        )


def phase_note(load: Callable[[], object]) -> str:
    """Run one extra load with its stages timed, and describe where the time went."""
    phases = Phases()
    original_batches = loader._batches
    original_finalize: Callable[..., Any] = writer.finalize_version_table

    def timed_batches(source: Any, path: Path) -> Iterator[Any]:
        batches = original_batches(source, path)
        while True:
            with phases.measure("read (GDAL)"):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch

    def timed_finalize(cursor: Any, *args: Any, **kwargs: Any) -> Any:
        return original_finalize(_StatementTimer(cursor, phases), *args, **kwargs)

    start = time.perf_counter()
    with patched(
        [
            (loader, "file_sha256", phases.wrap("sha256", loader.file_sha256)),
            (loader, "_batches", timed_batches),
            (
                loader,
                "prepare_geometries",
                phases.wrap("geometry", loader.prepare_geometries),
            ),
            (writer, "copy_batch", phases.wrap("CSV+COPY", writer.copy_batch)),
            (writer, "finalize_version_table", timed_finalize),
        ]
    ):
        load()
    return phases.describe("ours", time.perf_counter() - start)


class _StatementTimer:
    """A cursor stand-in that times each finalize statement under a short label."""

    LABELS = (
        ("ST_IsValid", "validity"),
        ("PRIMARY KEY", "primary key"),
        ("USING gist", "GiST"),
        ("ANALYZE", "analyze"),
        ("ST_Extent", "extent"),
    )

    def __init__(self, cursor: Any, phases: Phases) -> None:
        self._cursor = cursor
        self._phases = phases

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the statement on the real cursor, timed under its label."""
        text = statement if isinstance(statement, str) else statement.as_string(self._cursor)
        label = next((name for key, name in self.LABELS if key in text), "finalize other")
        with self._phases.measure(label):
            return self._cursor.execute(statement, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)
