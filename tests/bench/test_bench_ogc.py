"""The OGC benchmarks run end to end at a tiny scale, and their output checks reject wrong answers."""

import json
from typing import Any

import mapbox_vector_tile
import pytest

from bench import bench_features, bench_tiles
from bench.__main__ import parse_arguments
from bench.bench_features import Page, check_page
from bench.bench_tiles import Tile, TileCounter, tile_at
from bench.harness import BenchmarkResult, CheckFailed, Options, Role
from bench.ogc_peers import pygeoapi_config

TINY = Options(scale=1, repeat=1, warmup=False)
PAGE = Page(
    count=3, first_fid=1, last_fid=3, first_name="市道サンプル１号線", geometry_type="LineString"
)


def _feature(
    fid: int, name: str = "市道サンプル１号線", *, as_property: bool = False
) -> dict[str, Any]:
    properties: dict[str, Any] = {"路線名": name}
    feature: dict[str, Any] = {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "LineString", "coordinates": [[131.49, 33.28], [131.5, 33.29]]},
    }
    if as_property:
        properties["fid"] = fid
    else:
        feature["id"] = fid
    return feature


def _collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def _tile(lines: int) -> bytes:
    features = [
        {"geometry": f"LINESTRING ({i} 0, {i} 100)", "properties": {"fid": i}} for i in range(lines)
    ]
    return bytes(mapbox_vector_tile.encode([{"name": "roads", "features": features}]))


def _require_runs(results: list[BenchmarkResult], mandatory: set[str]) -> None:
    """Fail on any broken contender, except a peer server that could not start: skip for it."""
    unavailable = {}
    for result in results:
        for contender in result.contenders:
            if not contender.failed:
                assert len(contender.seconds) == result.repeat
                continue
            error = contender.error or ""
            if (
                contender.role is Role.peer
                and contender.name not in mandatory
                and ("did not start" in error)
            ):
                unavailable[contender.name] = error.splitlines()[0]
                continue
            pytest.fail(f"{result.name}: {contender.name} failed: {error}")
    if unavailable:
        pytest.skip("peer servers could not start: " + "; ".join(unavailable.values()))


def test_a_full_page_in_fid_order_passes_whether_the_fid_is_the_id_or_a_property() -> None:
    check_page(_collection(_feature(1), _feature(2, "x"), _feature(3, "y")), PAGE)
    check_page(_collection(*(_feature(i, as_property=True) for i in (1, 2, 3))).decode(), PAGE)


def test_a_short_page_a_wrong_order_or_a_wrong_name_fails_the_check() -> None:
    with pytest.raises(CheckFailed, match="^2 features, not 3$"):
        check_page(_collection(_feature(1), _feature(2)), PAGE)
    with pytest.raises(CheckFailed, match="^fids 3…1, not 1…3$"):
        check_page(_collection(_feature(3), _feature(2), _feature(1)), PAGE)
    with pytest.raises(
        CheckFailed, match="first 路線名 '市道サンプル２号線' != '市道サンプル１号線'"
    ):
        check_page(_collection(_feature(1, "市道サンプル２号線"), _feature(2), _feature(3)), PAGE)
    with pytest.raises(CheckFailed, match="not JSON"):
        check_page(b"<html>Internal Server Error</html>", PAGE)
    with pytest.raises(CheckFailed, match="not a FeatureCollection"):
        check_page(b'{"code": "NotFound"}', PAGE)


def test_a_tile_with_about_as_many_features_as_st_asmvt_passes_and_others_fail() -> None:
    counter = TileCounter()
    counter.check("ours", _tile(95), expected=100)
    assert counter.counts == {"ours": 95}
    with pytest.raises(CheckFailed, match="^50 features in the tile, ST_AsMVT puts 100"):
        counter.check("ours", _tile(50), expected=100)
    with pytest.raises(CheckFailed, match="the tile is empty"):
        counter.check("ours", b"", expected=100)
    with pytest.raises(CheckFailed, match="the tile holds no feature"):
        counter.check("ours", _tile(0), expected=0)
    with pytest.raises(CheckFailed, match="not a vector tile"):
        counter.check("ours", b'{"detail": "Not Found"}', expected=100)


def test_the_central_beppu_tiles_are_computed_from_33_28n_131_49e() -> None:
    assert [tile_at(131.49, 33.28, z) for z in (12, 14, 16)] == [
        Tile(12, 3544, 1646),
        Tile(14, 14176, 6584),
        Tile(16, 56705, 26337),
    ]


def test_pygeoapi_is_pointed_at_the_roads_view_with_fid_and_geom() -> None:
    config = pygeoapi_config("postgresql://bench:secret@db.example:5433/portal_bench_x", 8123)
    provider = config["resources"]["roads"]["providers"][0]
    assert provider["name"] == "PostgreSQL"
    assert (provider["table"], provider["id_field"], provider["geom_field"]) == (
        "roads",
        "fid",
        "geom",
    )
    assert provider["data"] == {
        "host": "db.example",
        "port": 5433,
        "dbname": "portal_bench_x",
        "user": "bench",
        "password": "secret",
        "search_path": ["layers"],
    }
    assert config["server"]["url"] == "http://127.0.0.1:8123"
    assert config["server"]["limits"]["max_items"] == 10000


def test_the_command_line_knows_the_ogc_benchmarks() -> None:
    assert parse_arguments(["features", "tiles"]).names == ["features", "tiles"]


def test_the_features_benchmark_runs_every_contender_and_checks_their_pages() -> None:
    result = bench_features.run(TINY, lambda message: None)

    assert [c.name for c in result.contenders] == ["ours", "pygeoapi", "tipg", "raw PostGIS"]
    assert result.repeat == bench_features.REQUESTS_PER_REPEAT
    assert 0 < result.work <= bench_features.LIMIT
    assert any(note.startswith("ratios: ours/pygeoapi") for note in result.notes)
    _require_runs([result], mandatory={"ours", "raw PostGIS"})


def test_the_tiles_benchmark_times_cold_and_cached_tiles_against_tipg_and_st_asmvt() -> None:
    results = bench_tiles.run(TINY, lambda message: None, zooms=(14,))

    assert [r.name for r in results] == ["tiles z14 cold", "tiles z14 cached"]
    cold, cached = results
    assert [(c.name, c.role) for c in cold.contenders] == [
        ("ours cold", Role.ours),
        ("tipg", Role.peer),
        ("raw ST_AsMVT", Role.baseline),
    ]
    assert cached.ours.name == "ours cached"
    assert any(note.startswith("features in the tile: ") for note in cold.notes)
    _require_runs(results, mandatory={"ours cold", "ours cached", "raw ST_AsMVT"})
