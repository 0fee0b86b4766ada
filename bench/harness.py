"""Time contenders (ours, peers, the physical limit) on one task and compare them."""

import enum
import statistics
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

_SECONDS = "{:.2f}"


class Role(enum.Enum):
    """What a contender stands for in the comparison."""

    ours = "ours"
    peer = "peer"
    baseline = "baseline"


class CheckFailed(Exception):
    """A contender's output was wrong, so its time means nothing."""


def expect(condition: bool, message: str) -> None:
    """Raise `CheckFailed` with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True)
class Options:
    """What the command line chose for every benchmark."""

    scale: int = 50
    repeat: int = 3
    warmup: bool = True


@dataclass(frozen=True)
class Contender:
    """One way of doing the task: `run` is timed, `check` validates what it returned."""

    name: str
    role: Role
    run: Callable[[], Any]
    check: Callable[[Any], None]
    setup: Callable[[], None] | None = None
    description: str = ""


@dataclass
class ContenderResult:
    """The timings of one contender, or why it failed."""

    name: str
    role: Role
    description: str = ""
    seconds: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Tell whether a run raised or a check rejected its output."""
        return self.error is not None

    @property
    def best(self) -> float | None:
        """Return the fastest run in seconds, or None if the contender failed."""
        return None if self.failed or not self.seconds else min(self.seconds)

    @property
    def median(self) -> float | None:
        """Return the median run in seconds, or None if the contender failed."""
        return None if self.failed or not self.seconds else statistics.median(self.seconds)


@dataclass
class BenchmarkResult:
    """Every contender's timings on one task of `work` units (e.g. features)."""

    name: str
    title: str
    work: int
    unit: str
    repeat: int
    contenders: list[ContenderResult]
    notes: list[str] = field(default_factory=list)

    def by_role(self, role: Role) -> list[ContenderResult]:
        """Return the contenders playing `role`, in declaration order."""
        return [c for c in self.contenders if c.role is role]

    @property
    def ours(self) -> ContenderResult:
        """Return our contender."""
        return self.by_role(Role.ours)[0]

    @property
    def baseline(self) -> ContenderResult | None:
        """Return the physical-limit baseline, if the benchmark has one."""
        found = self.by_role(Role.baseline)
        return found[0] if found else None

    def get(self, name: str) -> ContenderResult:
        """Return the contender called `name`."""
        for contender in self.contenders:
            if contender.name == name:
                return contender
        raise KeyError(name)

    def references(self) -> list[ContenderResult]:
        """Return what ratios are taken against: ours, then each peer, then the baseline."""
        return [*self.by_role(Role.ours), *self.by_role(Role.peer), *self.by_role(Role.baseline)]

    def throughput(self, contender: ContenderResult) -> float | None:
        """Return work units per second at the median, or None if unknown."""
        median = contender.median
        return None if median is None or median <= 0 else self.work / median


def ratio(contender: ContenderResult, reference: ContenderResult) -> float | None:
    """Return contender time / reference time at the median (above 1 means slower)."""
    if contender.median is None or reference.median is None or reference.median <= 0:
        return None
    return contender.median / reference.median


def run_benchmark(
    name: str,
    title: str,
    contenders: Sequence[Contender],
    *,
    work: int,
    unit: str = "items",
    repeat: int = 3,
    warmup: bool = True,
    clock: Callable[[], float] = time.perf_counter,
    log: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Run every contender `repeat` times, round-robin, after an optional untimed warm-up."""
    if repeat < 1:
        raise ValueError(f"repeat must be 1 or more, got {repeat}")
    roles = [c.role for c in contenders]
    if roles.count(Role.ours) != 1:
        raise ValueError(f"benchmark {name!r} needs exactly one contender with Role.ours")
    if len({c.name for c in contenders}) != len(contenders):
        raise ValueError(f"benchmark {name!r} has two contenders with the same name")
    results = {c.name: ContenderResult(c.name, c.role, c.description) for c in contenders}
    rounds = ([False] if warmup else []) + [True] * repeat
    for index, timed in enumerate(rounds):
        for contender in contenders:
            result = results[contender.name]
            if result.failed:
                continue
            if log:
                label = "warm-up" if not timed else f"run {index + (0 if warmup else 1)}/{repeat}"
                log(f"{name}: {contender.name} ({label})")
            seconds = _attempt(contender, result, clock)
            if seconds is not None and timed:
                result.seconds.append(seconds)
    return BenchmarkResult(name, title, work, unit, repeat, list(results.values()))


def _attempt(
    contender: Contender, result: ContenderResult, clock: Callable[[], float]
) -> float | None:
    """Set up, time and check one run; record the failure on `result` instead of raising."""
    try:
        if contender.setup:
            contender.setup()
        start = clock()
        value = contender.run()
        elapsed = clock() - start
        contender.check(value)
    except CheckFailed as exc:
        result.error = f"check failed: {exc}"
        return None
    except Exception as exc:  # any error disqualifies the contender: a failed run is not fast
        result.error = f"{type(exc).__name__}: {exc}".strip()
        result.error += "\n" + "".join(traceback.format_exception(exc)[-3:]).rstrip()
        return None
    return elapsed


class Phases:
    """Seconds spent per named stage of one instrumented run: the rough split of a contender."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = clock

    def add(self, label: str, seconds: float) -> None:
        """Add `seconds` to the stage `label`."""
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        """Time the body of a `with` block as part of the stage `label`."""
        start = self._clock()
        try:
            yield
        finally:
            self.add(label, self._clock() - start)

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """Return `function` with every call timed as part of the stage `label`."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.measure(label):
                return function(*args, **kwargs)

        return timed

    def describe(self, name: str, total: float) -> str:
        """Return one line: the total, each stage of 0.01 s or more, and the unaccounted rest."""
        stages = [*self.seconds.items(), ("other", total - sum(self.seconds.values()))]
        parts = " · ".join(
            f"{label} {seconds:.2f} s" for label, seconds in stages if round(seconds, 2)
        )
        return f"{name}, one instrumented run ({total:.2f} s): {parts}"


@contextmanager
def patched(replacements: Sequence[tuple[object, str, object]]) -> Iterator[None]:
    """Replace attributes (owner, name, value) for the block and restore them afterwards."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in replacements]
    try:
        for owner, name, value in replacements:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def render_table(result: BenchmarkResult) -> Table:
    """Build the results table: seconds, throughput, and ratios to each reference."""
    table = Table(title=f"{result.title} — {result.repeat} runs each")
    table.add_column("contender")
    table.add_column("role")
    table.add_column("min s", justify="right")
    table.add_column("median s", justify="right")
    table.add_column(f"{result.unit}/s", justify="right")
    references = result.references()
    for reference in references:
        table.add_column(f"÷ {reference.name}", justify="right")
    for contender in result.contenders:
        if contender.failed:
            cells = ["[bold red]FAILED[/]"] * 3 + ["—"] * len(references)
        else:
            cells = [
                _SECONDS.format(contender.best),
                _SECONDS.format(contender.median),
                _rate(result.throughput(contender)),
                *(_times(ratio(contender, r)) for r in references),
            ]
        table.add_row(contender.name, contender.role.value, *cells)
    return table


def headline(result: BenchmarkResult, peer: str | None = None) -> str:
    """Return the one-line summary: ours against `peer` (default: the first peer)."""
    ours = result.ours
    peers = result.by_role(Role.peer)
    other = result.get(peer) if peer else (peers[0] if peers else result.baseline)
    text = f"{result.title}: ours {_seconds_or_failed(ours)}"
    if other is None:
        return text
    factor = ratio(ours, other)
    verdict = "n/a (a contender FAILED)" if factor is None else f"{factor:.2f}×"
    return f"{text}, {other.name} {_seconds_or_failed(other)} → ours/{other.name} = {verdict}"


def report(result: BenchmarkResult, console: Console, peer: str | None = None) -> None:
    """Print the table, the failures with their reasons, the notes and the headline."""
    console.print(render_table(result))
    for contender in result.contenders:
        if contender.failed:
            console.print(
                Text.assemble(("FAILED", "bold red"), f" {contender.name}: {contender.error}")
            )
    for note in result.notes:
        console.print(note, markup=False)
    console.print(headline(result, peer), markup=False)


def as_json(result: BenchmarkResult) -> dict[str, Any]:
    """Return the result as plain data for `--json`."""
    references = result.references()
    return {
        "name": result.name,
        "title": result.title,
        "work": result.work,
        "unit": result.unit,
        "repeat": result.repeat,
        "notes": result.notes,
        "contenders": [
            {
                "name": c.name,
                "role": c.role.value,
                "description": c.description,
                "failed": c.failed,
                "error": c.error,
                "seconds": c.seconds,
                "min": c.best,
                "median": c.median,
                "per_second": result.throughput(c),
                "ratios": {r.name: ratio(c, r) for r in references},
            }
            for c in result.contenders
        ],
        "headline": headline(result),
    }


def _seconds_or_failed(contender: ContenderResult) -> str:
    median = contender.median
    return "FAILED" if median is None else f"{median:.2f} s"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"
