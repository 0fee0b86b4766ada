"""Loading 1M points and 100k road lines: load_layer_from_file vs ogr2ogr vs a bare COPY."""

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psycopg
import pyarrow as pa
import pyogrio
import shapely
from psycopg import sql
from pyproj import Transformer
from sqlalchemy import Engine

from bench.bench_load import (
    CACHE_DIR,
    OGR2OGR,
    OGR2OGR_OPTIONS,
    Reference,
    check_loaded,
    demo_roads,
    floor_copy_text,
    phase_note,
    read_reference,
)
from bench.db import bench_database, keyword_conninfo
from bench.harness import BenchmarkResult, Contender, Options, Role, expect, run_benchmark
from portal.catalog.departments import ensure_department
from portal.core.database import create_db_engine, make_session_factory, session_scope
from portal.core.principal import Visibility
from portal.core.settings import Settings
from portal.geo.columns import ColumnSpec
from portal.geo.loader import LoadResult, load_layer_from_file
from portal.geo.registry import ensure_layer

NAME = "load_points"
DESCRIPTION = "1M points (GPKG) + 100k road lines (Shapefile) → PostGIS: ours, ogr2ogr, COPY"
POINTS_PER_SCALE = 20_000  # --scale 50 → 1,000,000 points
POINTS_VERSION = 1  # bump when the generated file changes
SCHEMA = "bench"
T = TypeVar("T")
CONTENDERS = ("ours", OGR2OGR, "COPY floor")
BEPPU = (131.4914, 33.2846)  # 別府市役所, lon/lat
KINDS = ("消火栓", "防火水槽", "街路灯", "マンホール", "バス停", "カーブミラー")
AREAS = ("北浜", "南町", "鉄輪", "亀川", "浜脇", "石垣東", "朝見", "上人ケ浜町", "青山町", "光町")


@dataclass
class Input:
    """One file to load, where each contender puts it, and how to check it."""

    key: str
    path: Path
    sample_field: str
    vertex_sql: str
    reference: Reference
    columns: list[ColumnSpec] = field(default_factory=list)
    copy_text: bytes = b""

    @property
    def layer_id(self) -> str:
        """Our layer id (and view name in the `layers` schema)."""
        return self.key

    def table(self, contender: str) -> str:
        """The peer's or baseline's table in the bench schema."""
        return f"{'ogr' if contender == OGR2OGR else 'floor'}_{self.key}"


def run(options: Options, log: Callable[[str], None]) -> BenchmarkResult:
    """Load the points and the roads with each contender on a throwaway database."""
    inputs = [
        Input(
            "points",
            bench_points(POINTS_PER_SCALE * options.scale, log),
            "名称",
            "geom",
            Reference(0, []),
        ),
        Input(
            "roads",
            demo_roads(options.scale, log),
            "路線名",
            "ST_PointN(ST_GeometryN(geom, 1), 1)",
            Reference(0, []),
        ),
    ]
    for item in inputs:
        item.reference = read_reference(item.path, item.sample_field)
        log(f"{NAME}: preparing the COPY text of {item.key} for the baseline (untimed)")
        item.columns, item.copy_text = floor_copy_text(item.path)
    total = sum(item.reference.features for item in inputs)
    parts: dict[str, dict[str, list[float]]] = {c: {i.key: [] for i in inputs} for c in CONTENDERS}
    with bench_database() as url:
        engine = create_db_engine(Settings(database_url=url))
        try:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))

            def timed(contender: str, item: Input, work: Callable[[], T]) -> T:
                start = time.perf_counter()
                value = work()
                parts[contender][item.key].append(time.perf_counter() - start)
                return value

            def ours() -> list[LoadResult]:
                return [timed("ours", i, partial(load_ours, engine, i)) for i in inputs]

            def check_ours(results: Any) -> None:
                for item, result in zip(inputs, results, strict=True):
                    expect(
                        result.feature_count == item.reference.features,
                        f"{item.key}: feature_count {result.feature_count} != "
                        f"{item.reference.features}",
                    )
                    check_item(url, "layers", item.layer_id, result.table_name, item)

            def peer() -> None:
                for item in inputs:
                    timed(OGR2OGR, item, partial(run_ogr2ogr, url, item))

            def floor() -> None:
                for item in inputs:
                    timed("COPY floor", item, partial(copy_floor, url, item))

            def check_tables(contender: str) -> Callable[[object], None]:
                def check(_: object) -> None:
                    for item in inputs:
                        table = item.table(contender)
                        check_item(url, SCHEMA, table, table, item)

                return check

            contenders = [
                Contender(
                    "ours",
                    Role.ours,
                    run=ours,
                    check=check_ours,
                    setup=lambda: register_layers(url, engine, inputs),
                    description="portal.geo.loader.load_layer_from_file, points then roads",
                ),
                Contender(
                    OGR2OGR,
                    Role.peer,
                    run=peer,
                    check=check_tables(OGR2OGR),
                    setup=lambda: reset(url, inputs),
                    description="ogr2ogr -t_srs EPSG:4326, COPY, GiST (as in `load`)",
                ),
                Contender(
                    "COPY floor",
                    Role.baseline,
                    run=floor,
                    check=check_tables("COPY floor"),
                    setup=lambda: reset(url, inputs),
                    description="prepared EWKB text: COPY, primary key, GiST",
                ),
            ]
            result = run_benchmark(
                NAME,
                f"load {inputs[0].reference.features:,} points + "
                f"{inputs[1].reference.features:,} road lines",
                contenders,
                work=total,
                unit="features",
                repeat=options.repeat,
                warmup=options.warmup,
                log=log,
            )
            result.notes += part_notes(result, parts, inputs, options.repeat)
            if not result.ours.failed:
                for item in inputs:
                    register_layers(url, engine, inputs)
                    note = phase_note(partial(load_ours, engine, item))
                    result.notes.append(note.replace("ours,", f"ours ({item.key}),", 1))
            return result
        finally:
            engine.dispose()


def part_notes(
    result: BenchmarkResult,
    parts: dict[str, dict[str, list[float]]],
    inputs: list[Input],
    repeat: int,
) -> list[str]:
    """One line per input: each contender's median over the timed runs, and our ratios."""
    notes = []
    for item in inputs:
        medians: dict[str, float] = {}
        for contender in CONTENDERS:
            timings = parts[contender][item.key][-repeat:]
            if not result.get(contender).failed and len(timings) == repeat:
                medians[contender] = statistics.median(timings)
        cells = [f"{name} {seconds:.2f} s" for name, seconds in medians.items()]
        ratios = [
            f"ours/{name} = {medians['ours'] / medians[name]:.2f}×"
            for name in (OGR2OGR, "COPY floor")
            if "ours" in medians and name in medians
        ]
        features = item.reference.features
        notes.append(f"{item.key} ({features:,}): " + ", ".join(cells) + " → " + ", ".join(ratios))
    return notes


def bench_points(count: int, log: Callable[[str], None]) -> Path:
    """Return the cached GeoPackage of `count` points around Beppu (EPSG:6670), made once."""
    target = CACHE_DIR / "points" / f"points_{count}.gpkg"
    marker = target.with_suffix(".json")
    stamp = {"count": count, "version": POINTS_VERSION}
    try:
        if target.is_file() and json.loads(marker.read_text()) == stamp:
            return target
    except (OSError, ValueError):
        pass
    log(f"{NAME}: generating {count:,} points into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as staging:
        path = Path(staging) / target.name
        write_points(path, count)
        shutil.move(path, target)
    marker.write_text(json.dumps(stamp))
    return target


def write_points(path: Path, count: int, seed: int = 4422) -> None:
    """Write `count` points scattered over about 10 km around Beppu, with Japanese attributes."""
    rng = np.random.default_rng(seed)
    lon = BEPPU[0] + rng.normal(0, 0.03, count)
    lat = BEPPU[1] + rng.normal(0, 0.025, count)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:6670", always_xy=True).transform(lon, lat)
    numbers = np.arange(1, count + 1)
    kinds = rng.integers(0, len(KINDS), count)
    areas = rng.integers(0, len(AREAS), count)
    blocks = rng.integers(1, 8, count)
    table = pa.table(
        {
            "名称": pa.array([f"施設{n:07d}" for n in numbers]),
            "種別": pa.array(np.array(KINDS, dtype=object)[kinds]),
            "住所": pa.array(
                [f"大分県別府市{AREAS[a]}{b}丁目" for a, b in zip(areas, blocks, strict=True)]
            ),
            "設置年": pa.array(rng.integers(1970, 2026, count).astype(np.int32)),
            "標高m": pa.array(np.round(rng.uniform(0, 600, count), 1)),
            "geometry": pa.array(shapely.to_wkb(shapely.points(x, y)), type=pa.binary()),
        }
    )
    pyogrio.write_arrow(
        table,
        path,
        layer="points",
        driver="GPKG",
        geometry_name="geometry",
        geometry_type="Point",
        crs="EPSG:6670",
    )


def check_item(url: str, schema: str, relation: str, table: str, item: Input) -> None:
    """Check one input's loaded table with the shared load checks."""
    check_loaded(
        url,
        schema,
        relation,
        table,
        item.reference,
        field=item.sample_field,
        vertex_sql=item.vertex_sql,
    )


def load_ours(engine: Engine, item: Input) -> LoadResult:
    """Load one input with the portal's loader (its layer registered beforehand)."""
    return load_layer_from_file(engine, layer_id=item.layer_id, path=item.path)


def register_layers(url: str, engine: Engine, inputs: list[Input]) -> None:
    """Reset, then register our layers, as an upload would before loading."""
    reset(url, inputs)
    with session_scope(make_session_factory(engine)) as session:
        department = ensure_department(session, slug="doboku", name="土木課", name_en=None)
        for item in inputs:
            ensure_layer(
                session,
                layer_id=item.layer_id,
                title=item.key,
                title_en=None,
                department_id=department,
                visibility=Visibility.public,
            )


def reset(url: str, inputs: list[Input]) -> None:
    """Drop every contender's output and checkpoint, so each run starts from the same state."""
    with psycopg.connect(url, autocommit=True) as connection:
        for item in inputs:
            connection.execute(
                sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier("layers", item.layer_id))
            )
            tables = connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'layers' AND tablename LIKE %s",
                (f"\\_v%\\_{item.layer_id}",),
            ).fetchall()
            for (table,) in tables:
                connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("layers", table)))
            connection.execute("DELETE FROM portal.layers WHERE id = %s", (item.layer_id,))
            for contender in (OGR2OGR, "COPY floor"):
                connection.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(
                        sql.Identifier(SCHEMA, item.table(contender))
                    )
                )
        connection.execute("CHECKPOINT")


def run_ogr2ogr(url: str, item: Input) -> None:
    """Load one input with ogr2ogr, with the options of the `load` benchmark."""
    command = [OGR2OGR, "-f", "PostgreSQL", "PG:" + keyword_conninfo(url), str(item.path)]
    command += ["-nln", item.table(OGR2OGR), "-lco", f"SCHEMA={SCHEMA}", *OGR2OGR_OPTIONS.split()]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"ogr2ogr exited with {completed.returncode}: {completed.stderr}")


def copy_floor(url: str, item: Input) -> None:
    """Create the table, COPY the prepared text, add the key and the GiST index, commit."""
    name = item.table("COPY floor")
    table = sql.Identifier(SCHEMA, name)
    definitions: list[sql.Composable] = [sql.SQL("fid bigint GENERATED BY DEFAULT AS IDENTITY")]
    definitions += [
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in item.columns
    ]
    definitions.append(sql.SQL("geom geometry(Geometry, 4326)"))
    names = sql.SQL(", ").join(
        [sql.Identifier(c.name) for c in item.columns] + [sql.Identifier("geom")]
    )
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(definitions))
        )
        with cursor.copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, names)
        ) as copy:
            copy.write(item.copy_text)
        cursor.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (fid)").format(table))
        cursor.execute(
            sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(
                sql.Identifier(f"{name}_geom_idx"), table
            )
        )
