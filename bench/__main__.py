"""Run the benchmarks: `python -m bench [NAME ...] [--scale N] [--repeat N] [--json PATH]`."""

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from rich.console import Console

from bench.harness import BenchmarkResult, Options, as_json, report

# name → module; each module has NAME, DESCRIPTION and run(options, log) -> BenchmarkResult
# (or a list of them, one table each).
BENCHMARKS = {
    "load": "bench.bench_load",
    "search": "bench.bench_search",
    "load_points": "bench.bench_load_points",
    "harvest": "bench.bench_harvest",
    "features": "bench.bench_features",
    "tiles": "bench.bench_tiles",
}
HEADLINE_PEER = {
    "load": "ogr2ogr",
    "load_points": "ogr2ogr",
    "harvest": "re-harvest",
    "features": "pygeoapi",
    "tiles": "tipg",
}
WIDE = 130


class BenchmarkModule(Protocol):
    """What a benchmark module provides."""

    NAME: str
    DESCRIPTION: str

    def run(
        self, options: Options, log: Callable[[str], None]
    ) -> BenchmarkResult | list[BenchmarkResult]:
        """Run the benchmark and return its result, or one result per table."""
        ...


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="ベンチマーク / benchmarks against a peer and the physical limit",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run ({', '.join(BENCHMARKS)}); all if none",
    )
    parser.add_argument("--scale", type=int, default=50, help="demo city scale (default 50)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs per contender (default 3)"
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if arguments.scale < 1 or arguments.repeat < 1:
        parser.error("--scale and --repeat must be 1 or more")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks, print their tables, and return 1 if any contender failed."""
    arguments = parse_arguments(argv)
    options = Options(
        scale=arguments.scale, repeat=arguments.repeat, warmup=not arguments.no_warmup
    )
    # A pipe or a CI log would get 80 columns, which wraps the ratio table.
    console = Console(log_path=False, width=None if sys.stdout.isatty() else WIDE)
    results = []
    for name in arguments.names or list(BENCHMARKS):
        module: BenchmarkModule = importlib.import_module(BENCHMARKS[name])
        console.rule(f"{module.NAME}: {module.DESCRIPTION}")
        outcome = module.run(options, lambda message: console.log(message, markup=False))
        for result in outcome if isinstance(outcome, list) else [outcome]:
            report(result, console, HEADLINE_PEER.get(name))
            results.append(result)
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"scale": options.scale, "results": [as_json(r) for r in results]}
        arguments.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        console.print(f"wrote {arguments.json}", markup=False)
    return 1 if any(c.failed for r in results for c in r.contenders) else 0


if __name__ == "__main__":
    sys.exit(main())
