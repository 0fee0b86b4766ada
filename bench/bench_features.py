"""OGC API Features items: 10,000 roads as GeoJSON from ours, pygeoapi, tipg and bare PostGIS."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from bench.bench_load import LAYER_ID, SAMPLE_FIELD
from bench.harness import (
    BenchmarkResult,
    CheckFailed,
    Contender,
    Options,
    Role,
    expect,
    ratio,
    run_benchmark,
)
from bench.ogc_peers import (
    OURS,
    PYGEOAPI,
    TIPG,
    TIPG_COLLECTION,
    OgcServers,
    RoadsDatabase,
    latency_notes,
    roads_database,
)

NAME = "features"
DESCRIPTION = "OGC API Features: 10,000 roads as GeoJSON — ours vs pygeoapi vs tipg vs PostGIS"
LIMIT = 10_000
REQUESTS_PER_REPEAT = 5  # --repeat 3 → 15 timed requests per contender
RAW = "raw PostGIS"
AIM_OVER_RAW = 2.0
RAW_SQL = sql.SQL(
    'SELECT \'{{"type":"FeatureCollection","features":[\' '
    "|| string_agg(ST_AsGeoJSON(t.*, 'geom'), ',') || ']}}' "
    "FROM (SELECT * FROM {view} ORDER BY fid LIMIT %s) AS t"
).format(view=sql.Identifier("layers", LAYER_ID))


@dataclass(frozen=True)
class Page:
    """What the first page of roads must hold, read straight from the view."""

    count: int
    first_fid: int
    last_fid: int
    first_name: str
    geometry_type: str


def run(options: Options, log: Callable[[str], None]) -> BenchmarkResult:
    """Load the roads, start ours, pygeoapi and tipg, and time one page of 10,000 from each."""
    with (
        roads_database(options.scale, log) as roads,
        OgcServers(roads, [OURS, PYGEOAPI, TIPG], log) as servers,
    ):
        return compare(roads, servers, options, log)


def compare(
    roads: RoadsDatabase, servers: OgcServers, options: Options, log: Callable[[str], None]
) -> BenchmarkResult:
    """Time the items request on every server and the same page built by PostGIS alone."""
    limit = min(LIMIT, roads.features)
    expected = expected_page(roads.url, limit)
    sizes: dict[str, int] = {}

    def over_http(name: str, path: str, params: dict[str, Any]) -> Callable[[], bytes]:
        def fetch() -> bytes:
            return servers.get(name, path, params).content

        return fetch

    def checked(name: str) -> Callable[[bytes | str], None]:
        def check(body: bytes | str) -> None:
            sizes[name] = len(body.encode() if isinstance(body, str) else body)
            check_page(body, expected)

        return check

    connection = psycopg.connect(roads.url, autocommit=True)

    def raw() -> str:
        row = connection.execute(RAW_SQL, (limit,)).fetchone()
        return str(row[0]) if row and row[0] is not None else ""

    items = f"/collections/{LAYER_ID}/items"
    contenders = [
        Contender(
            OURS,
            Role.ours,
            run=over_http(OURS, f"/ogc{items}", {"limit": limit}),
            check=checked(OURS),
            description=f"GET /ogc{items}?limit={limit} from `portal serve`",
        ),
        Contender(
            PYGEOAPI,
            Role.peer,
            run=over_http(PYGEOAPI, items, {"limit": limit, "f": "json"}),
            check=checked(PYGEOAPI),
            description="pygeoapi 0.21 starlette app, stock PostgreSQLProvider on layers.roads",
        ),
        Contender(
            TIPG,
            Role.peer,
            run=over_http(TIPG, f"/collections/{TIPG_COLLECTION}/items", {"limit": limit}),
            check=checked(TIPG),
            description="tipg 1.6.1 (uvicorn tipg.main:app) on the schema layers",
        ),
        Contender(
            RAW,
            Role.baseline,
            run=raw,
            check=checked(RAW),
            description="string_agg(ST_AsGeoJSON(t.*)) on a warm psycopg connection",
        ),
    ]
    try:
        result = run_benchmark(
            NAME,
            f"GET {limit:,} roads as GeoJSON (layer of {roads.features:,})",
            contenders,
            work=limit,
            unit="features",
            repeat=options.repeat * REQUESTS_PER_REPEAT,
            warmup=options.warmup,
            log=log,
        )
    finally:
        connection.close()
    result.notes += latency_notes(result.contenders)
    result.notes += [f"{name}: {size / 1e6:.2f} MB per page" for name, size in sizes.items()]
    result.notes += aim_notes(result)
    return result


def expected_page(url: str, limit: int) -> Page:
    """Read the first `limit` roads' fids, the first 路線名 and geometry type from the view."""
    query = sql.SQL(
        "SELECT count(*), min(fid), max(fid), "
        "(array_agg({field} ORDER BY fid))[1], (array_agg(ST_GeometryType(geom) ORDER BY fid))[1] "
        "FROM (SELECT fid, {field}, geom FROM {view} ORDER BY fid LIMIT %s) AS page"
    ).format(field=sql.Identifier(SAMPLE_FIELD), view=sql.Identifier("layers", LAYER_ID))
    with psycopg.connect(url) as connection:
        row = connection.execute(query, (limit,)).fetchone()
    assert row is not None
    return Page(int(row[0]), int(row[1]), int(row[2]), str(row[3]), str(row[4]).removeprefix("ST_"))


def feature_fid(feature: dict[str, Any]) -> int | None:
    """Return a GeoJSON feature's fid: its `id`, or the `fid` property when it has no id."""
    value: Any = feature.get("id", (feature.get("properties") or {}).get("fid"))
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def check_page(body: bytes | str, expected: Page) -> None:
    """Check a FeatureCollection: the count, first and last fid, a 路線名 and a geometry."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise CheckFailed(f"the answer is not JSON ({exc}): {body[:120]!r}") from exc
    expect(
        isinstance(data, dict) and data.get("type") == "FeatureCollection",
        f"not a FeatureCollection: {str(data)[:120]}",
    )
    features = data.get("features") or []
    expect(len(features) == expected.count, f"{len(features):,} features, not {expected.count:,}")
    first, last = features[0], features[-1]
    expect(
        feature_fid(first) == expected.first_fid and feature_fid(last) == expected.last_fid,
        f"fids {feature_fid(first)}…{feature_fid(last)}, "
        f"not {expected.first_fid}…{expected.last_fid}",
    )
    name = (first.get("properties") or {}).get(SAMPLE_FIELD)
    expect(name == expected.first_name, f"first {SAMPLE_FIELD} {name!r} != {expected.first_name!r}")
    geometry = first.get("geometry") or {}
    expect(
        geometry.get("type") == expected.geometry_type and bool(geometry.get("coordinates")),
        f"first geometry {str(geometry)[:80]}, expected a {expected.geometry_type}",
    )


def aim_notes(result: BenchmarkResult) -> list[str]:
    """Return the headline ratios and whether ours is within 2× of raw PostGIS."""
    ours = result.ours
    parts = []
    for other in result.contenders[1:]:
        factor = ratio(ours, other)
        parts.append(f"ours/{other.name} " + ("n/a" if factor is None else f"{factor:.2f}×"))
    notes = ["ratios: " + ", ".join(parts)]
    over_raw = ratio(ours, result.get(RAW))
    if over_raw is not None:
        verdict = "within" if over_raw <= AIM_OVER_RAW else "OVER"
        notes.append(
            f"aim: ours within {AIM_OVER_RAW:.0f}× of {RAW} — {over_raw:.2f}× ({verdict} the aim)"
        )
    return notes
