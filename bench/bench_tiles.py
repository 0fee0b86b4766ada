"""OGC API Tiles: road tiles over central Beppu from ours (cold, cached), tipg and bare ST_AsMVT.

Cold is the first request after `portal.layers.revision` is bumped (untimed), which gives every
cache key of the layer a new value, so neither the in-process LRU nor the disk cache can answer.
Cached is the same tile requested again right after.
"""

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import mapbox_vector_tile
import psycopg
from psycopg import sql

from bench.bench_load import LAYER_ID
from bench.harness import (
    BenchmarkResult,
    CheckFailed,
    Contender,
    ContenderResult,
    Options,
    Role,
    expect,
    run_benchmark,
)
from bench.ogc_peers import (
    OURS,
    TIPG,
    TIPG_COLLECTION,
    OgcServers,
    ServerUnavailable,
    latency_notes,
    percentile,
    roads_database,
)

NAME = "tiles"
DESCRIPTION = "road vector tiles over central Beppu: ours cold and cached vs tipg vs ST_AsMVT"
CENTER = (131.49, 33.28)  # lon, lat of central Beppu (別府市中心部)
ZOOMS = (12, 14, 16)
REQUESTS_PER_REPEAT = 10  # --repeat 3 → 30 timed requests per contender and zoom
COUNT_TOLERANCE = 0.10  # clipping and buffers differ a little between implementations
CACHED_AIM_SECONDS = 0.005
COLD = "ours cold"
CACHED = "ours cached"
RAW = "raw ST_AsMVT"
RAW_SQL = sql.SQL(
    "SELECT ST_AsMVT(q, 'roads') FROM ("
    "SELECT ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s)) AS geom, "
    "fid FROM {view} WHERE geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326)) AS q"
).format(view=sql.Identifier("layers", LAYER_ID))
# Requests that draw no tile, through the same middleware: the per-request floor of each server.
FLOOR_PATHS = {OURS: "/ogc/conformance", TIPG: "/healthz"}
BUMP_SQL = "UPDATE portal.layers SET revision = revision + 1 WHERE id = %s RETURNING revision"


@dataclass(frozen=True)
class Tile:
    """One WebMercatorQuad tile."""

    z: int
    x: int
    y: int

    @property
    def label(self) -> str:
        """Return z/x/y."""
        return f"{self.z}/{self.x}/{self.y}"


def tile_at(lon: float, lat: float, z: int) -> Tile:
    """Return the WebMercatorQuad tile at zoom `z` that holds (lon, lat)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return Tile(z, x, y)


def run(
    options: Options, log: Callable[[str], None], zooms: Sequence[int] = ZOOMS
) -> list[BenchmarkResult]:
    """Load the roads, start ours and tipg, and time one central tile per zoom, cold and cached."""
    results: list[BenchmarkResult] = []
    with (
        roads_database(options.scale, log) as roads,
        OgcServers(roads, [OURS, TIPG], log) as servers,
        psycopg.connect(roads.url, autocommit=True) as connection,
    ):
        for zoom in zooms:
            results += compare_tile(tile_at(*CENTER, zoom), servers, connection, options, log)
    return results


def compare_tile(
    tile: Tile,
    servers: OgcServers,
    connection: psycopg.Connection,
    options: Options,
    log: Callable[[str], None],
) -> list[BenchmarkResult]:
    """Time one tile from every contender; return the cold and the cached comparison."""
    counter = TileCounter()
    params = {"z": tile.z, "x": tile.x, "y": tile.y}

    def raw() -> bytes:
        row = connection.execute(RAW_SQL, params).fetchone()
        return bytes(row[0]) if row and row[0] is not None else b""

    expected = counter.count(raw())
    ours_path = f"/ogc/collections/{LAYER_ID}/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}"
    tipg_path = f"/collections/{TIPG_COLLECTION}/tiles/WebMercatorQuad/{tile.label}"

    def over_http(name: str, path: str) -> Callable[[], bytes]:
        return lambda: servers.get(name, path).content

    revision = [0]

    def bump() -> None:
        row = connection.execute(BUMP_SQL, (LAYER_ID,)).fetchone()
        revision[0] = int(row[0]) if row else 0

    def check(name: str) -> Callable[[bytes], None]:
        return lambda data: counter.check(name, data, expected)

    def check_cold(data: bytes) -> None:
        counter.check(COLD, data, expected)
        check_rendered(servers.data_dir, revision[0])

    contenders = [
        Contender(
            COLD,
            Role.ours,
            run=over_http(OURS, ours_path),
            check=check_cold,
            setup=bump,
            description="first request after a revision bump (a new cache key)",
        ),
        Contender(
            CACHED,
            Role.peer,
            run=over_http(OURS, ours_path),
            check=check(CACHED),
            description="the same tile again, right after the cold request",
        ),
        Contender(
            TIPG,
            Role.peer,
            run=over_http(TIPG, tipg_path),
            check=check(TIPG),
            description="tipg 1.6.1, every road in the tile (no per-tile cap)",
        ),
        Contender(
            RAW,
            Role.baseline,
            run=raw,
            check=check(RAW),
            description="ST_AsMVT(ST_AsMVTGeom) on a warm psycopg connection",
        ),
    ]
    repeat = options.repeat * REQUESTS_PER_REPEAT
    log(f"{NAME}: z{tile.z} tile {tile.label}, {repeat} timed requests per contender")
    both = run_benchmark(
        f"{NAME} z{tile.z}",
        f"tile {tile.label}",
        contenders,
        work=1,
        unit="tiles",
        repeat=repeat,
        warmup=options.warmup,
    )
    results = split(both, tile, counter.counts, counter.sizes)
    results[1].notes.append(http_floor(servers, repeat))
    return results


def http_floor(servers: OgcServers, repeat: int) -> str:
    """Time a request that draws no tile on each server: what HTTP alone costs there."""
    parts = []
    for name, path in FLOOR_PATHS.items():
        seconds = []
        try:
            for _ in range(repeat):
                started = time.perf_counter()
                servers.get(name, path)
                seconds.append(time.perf_counter() - started)
        except (ServerUnavailable, RuntimeError, httpx.HTTPError):
            continue
        parts.append(f"{name} GET {path} p50 {percentile(seconds, 50) * 1000:.1f} ms")
    return "HTTP floor, no tile drawn: " + (", ".join(parts) if parts else "n/a (no server)")


def check_rendered(data_dir: Path, revision: int) -> None:
    """Check that the cold request drew a new tile: its revision's generation is on disk."""
    expect(
        any(path.is_dir() for path in data_dir.rglob(f"{LAYER_ID}/r{revision}-*")),
        f"no tile generation r{revision}-* of {LAYER_ID} under {data_dir} after the revision "
        "bump, so the request was not shown to be cold (does the tile route read the revision?)",
    )


def split(
    both: BenchmarkResult, tile: Tile, counts: dict[str, int], sizes: dict[str, int]
) -> list[BenchmarkResult]:
    """Make the cold and the cached table, each against tipg and raw ST_AsMVT."""
    peers = [both.get(TIPG), both.get(RAW)]
    cold, cached = both.get(COLD), dataclasses.replace(both.get(CACHED), role=Role.ours)
    results = [
        BenchmarkResult(
            f"{NAME} z{tile.z} {state}",
            f"road tile {tile.label} {state}",
            1,
            "tiles",
            both.repeat,
            [ours, *peers],
        )
        for state, ours in (("cold", cold), ("cached", cached))
    ]
    results[0].notes += [
        *latency_notes([cold, *peers]),
        "features in the tile: "
        + ", ".join(
            f"{name} {count:,} ({sizes[name] / 1000:,.0f} kB)" for name, count in counts.items()
        ),
        cold_aim(cold, peers),
    ]
    results[1].notes += [*latency_notes([cached]), cached_aim(cached)]
    return results


def cold_aim(cold: ContenderResult, peers: list[ContenderResult]) -> str:
    """Say whether ours cold is no slower than the better of tipg and raw ST_AsMVT."""
    medians = [(p.median, p.name) for p in peers if p.median is not None]
    if cold.median is None or not medians:
        return "aim (cold no slower than the better of tipg and raw): n/a (a contender FAILED)"
    best, name = min(medians)
    verdict = "within" if cold.median <= best else "OVER"
    return (
        f"aim: cold no slower than the better of tipg and raw — ours {cold.median * 1000:.1f} ms, "
        f"{name} {best * 1000:.1f} ms ({verdict} the aim)"
    )


def cached_aim(cached: ContenderResult) -> str:
    """Say whether ours cached answers within 5 ms at the median."""
    if cached.median is None:
        return f"aim: cached p50 < {CACHED_AIM_SECONDS * 1000:.0f} ms — n/a (FAILED)"
    verdict = "within" if cached.median < CACHED_AIM_SECONDS else "OVER"
    return (
        f"aim: cached p50 < {CACHED_AIM_SECONDS * 1000:.0f} ms — "
        f"{cached.median * 1000:.1f} ms ({verdict} the aim)"
    )


class TileCounter:
    """Decode vector tiles once per distinct content and check their feature counts."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self._decoded: dict[bytes, int] = {}

    def count(self, data: bytes) -> int:
        """Return the number of features over all layers of the tile `data`."""
        digest = hashlib.sha256(data).digest()
        if digest not in self._decoded:
            try:
                layers = mapbox_vector_tile.decode(data)
            except Exception as exc:  # any decoding error means the bytes are not a tile
                raise CheckFailed(f"not a vector tile ({type(exc).__name__}: {exc})") from exc
            self._decoded[digest] = sum(len(layer["features"]) for layer in layers.values())
        return self._decoded[digest]

    def check(self, name: str, data: bytes, expected: int) -> None:
        """Check that the tile holds features, about as many as ST_AsMVT puts in it."""
        expect(bool(data), "the tile is empty (0 bytes)")
        found = self.count(data)
        self.counts[name] = found
        self.sizes[name] = len(data)
        expect(found > 0, "the tile holds no feature")
        expect(
            abs(found - expected) <= COUNT_TOLERANCE * expected,
            f"{found:,} features in the tile, ST_AsMVT puts {expected:,} "
            f"(more than {COUNT_TOLERANCE:.0%} apart)",
        )
