"""Japanese catalog search: search_datasets against the same SQL issued directly."""

import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import event

from bench.catalog_corpus import load_corpus
from bench.db import bench_database
from bench.harness import BenchmarkResult, Contender, Options, Role, expect, run_benchmark
from portal.catalog.search import DatasetQuery, search_datasets
from portal.core.database import create_db_engine, make_session_factory
from portal.core.principal import ANONYMOUS
from portal.core.settings import Settings

NAME = "search"
DESCRIPTION = "日本語カタログ検索: search_datasets vs the same SQL on a warm connection"
DATASETS_PER_SCALE = 2000  # --scale 5 → 10k datasets, --scale 50 → 100k
FACETS = ("organization", "tags", "res_format")
QUERIES = {
    "避難所": "避難",
    "ひなん": "避難",
    "AED": "AED",
    "人口": "人口",
    "トイレ": "トイレ",
    "子育て": "子育て",
    "用途地域": "用途地域",
    "道路": "道路",
    "バリアフリー": "バリアフリー",
    "Wi-Fi": "無線LAN",
}


def run(options: Options, log: Callable[[str], None]) -> BenchmarkResult:
    """Load N datasets, then time the ten queries through our code and as raw SQL."""
    size = DATASETS_PER_SCALE * options.scale
    with bench_database() as url:
        corpus = load_corpus(url, size, log=log)
        log(f"search: {corpus.datasets:,} datasets loaded ({corpus.public:,} public)")
        engine = create_db_engine(Settings(database_url=url, env="test"))
        sessions = make_session_factory(engine)
        captured: dict[str, list[tuple[str, Any]]] = {}
        samples: dict[str, list[float]] = {"ours": [], "raw SQL": []}
        counts: dict[str, int] = {}

        def ours() -> dict[str, Any]:
            results = {}
            with sessions() as session:
                for query in QUERIES:
                    started = time.perf_counter()
                    result = search_datasets(
                        session, ANONYMOUS, DatasetQuery(q=query, rows=10, facet_fields=FACETS)
                    )
                    samples["ours"].append(time.perf_counter() - started)
                    results[query] = result
            return results

        def check_ours(results: dict[str, Any]) -> None:
            for query, needle in QUERIES.items():
                result = results[query]
                expect(result.count > 0, f"{query!r} found nothing")
                top = result.datasets[0].title + result.datasets[0].notes
                expect(needle.lower() in top.lower(), f"{query!r}: top result {top!r}")
                counts[query] = result.count

        statements = _capture(engine, sessions, captured)
        connection = psycopg.connect(url, autocommit=True)

        def raw() -> dict[str, int]:
            found = {}
            for query, batch in statements().items():
                started = time.perf_counter()
                for index, (sql, parameters) in enumerate(batch):
                    rows = connection.execute(sql, parameters).fetchall()
                    if index == 0:
                        found[query] = int(rows[0][0])
                samples["raw SQL"].append(time.perf_counter() - started)
            return found

        def check_raw(found: dict[str, int]) -> None:
            for query in QUERIES:
                expect(found.get(query) == counts.get(query), f"{query!r}: count differs")

        result = run_benchmark(
            NAME,
            f"search {len(QUERIES)} Japanese queries over {size:,} datasets",
            [
                Contender("ours", Role.ours, ours, check_ours, description="search_datasets"),
                Contender("raw SQL", Role.baseline, raw, check_raw, description="same SQL"),
            ],
            work=len(QUERIES),
            unit="queries",
            repeat=options.repeat,
            warmup=options.warmup,
            log=log,
        )
        samples["ours, no facets"] = _time_without_facets(sessions, options.repeat)
        connection.close()
        engine.dispose()
    for name, values in samples.items():
        if values:
            result.notes.append(
                f"{name}: per query p50 {_percentile(values, 50) * 1000:.1f} ms, "
                f"p95 {_percentile(values, 95) * 1000:.1f} ms over {len(values)} queries"
            )
    return result


def _time_without_facets(sessions: Any, rounds: int) -> list[float]:
    """Per-query times of the same searches without facets (package_search's default)."""
    times = []
    with sessions() as session:
        for _ in range(rounds):
            for query in QUERIES:
                started = time.perf_counter()
                search_datasets(session, ANONYMOUS, DatasetQuery(q=query, rows=10))
                times.append(time.perf_counter() - started)
    return times


def _capture(
    engine: Any, sessions: Any, captured: dict[str, list[tuple[str, Any]]]
) -> Callable[[], dict[str, list[tuple[str, Any]]]]:
    """Record the SQL our search emits per query, once, to replay it as the baseline."""

    def statements() -> dict[str, list[tuple[str, Any]]]:
        if captured:
            return captured
        current: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            current.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", record)
        try:
            with sessions() as session:
                for query in QUERIES:
                    current.clear()
                    search_datasets(
                        session, ANONYMOUS, DatasetQuery(q=query, rows=10, facet_fields=FACETS)
                    )
                    captured[query] = list(current)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return captured

    return statements


def _percentile(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[percent - 1]
