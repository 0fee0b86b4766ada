import json

import pytest
from rich.console import Console

from bench.__main__ import parse_arguments
from bench.harness import (
    BenchmarkResult,
    CheckFailed,
    Contender,
    Phases,
    Role,
    as_json,
    expect,
    headline,
    patched,
    ratio,
    render_table,
    report,
    run_benchmark,
)


class FakeClock:
    """A clock that only moves when a contender says it worked for some seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float, answer: int = 42) -> int:
        self.now += seconds
        return answer


def _accept(value: object) -> None:
    expect(value == 42, f"got {value!r}")


def _contenders(clock: FakeClock, *, peer_answer: int = 42) -> list[Contender]:
    return [
        Contender("ours", Role.ours, run=lambda: clock.work(2.0), check=_accept),
        Contender("ogr2ogr", Role.peer, run=lambda: clock.work(3.0, peer_answer), check=_accept),
        Contender("COPY floor", Role.baseline, run=lambda: clock.work(0.5), check=_accept),
    ]


def _run(clock: FakeClock, contenders: list[Contender]) -> BenchmarkResult:
    title = "load roads (1,000 features)"
    return run_benchmark("load", title, contenders, work=1000, unit="features", clock=clock)


def _text(result: BenchmarkResult) -> str:
    console = Console(record=True, width=200, color_system=None)
    report(result, console, peer="ogr2ogr")
    return console.export_text()


def test_a_contender_whose_check_fails_is_marked_failed_with_no_times() -> None:
    clock = FakeClock()
    result = _run(clock, _contenders(clock, peer_answer=0))

    peer = result.get("ogr2ogr")
    assert peer.failed
    assert peer.error == "check failed: got 0"
    assert peer.seconds == [] and peer.best is None and peer.median is None
    assert ratio(result.ours, peer) is None and ratio(peer, result.ours) is None
    assert result.throughput(peer) is None
    assert not result.ours.failed and len(result.ours.seconds) == 3


def test_a_failed_contender_is_shown_as_failed_never_as_fast() -> None:
    clock = FakeClock()
    result = _run(clock, _contenders(clock, peer_answer=0))
    text = _text(result)

    peer_row = next(line for line in text.splitlines() if "ogr2ogr" in line and "peer" in line)
    assert peer_row.count("FAILED") == 3
    assert "FAILED ogr2ogr: check failed: got 0" in text
    assert "ours/ogr2ogr = n/a (a contender FAILED)" in text
    assert headline(result).startswith("load roads (1,000 features): ours 2.00 s, ogr2ogr FAILED")


def test_a_contender_that_raises_is_failed_and_not_run_again() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def broken() -> int:
        calls.append(1)
        raise RuntimeError("connection refused")

    contenders = [*_contenders(clock)[:1], Contender("broken", Role.peer, broken, _accept)]
    result = _run(clock, contenders)

    assert result.get("broken").failed
    assert (result.get("broken").error or "").startswith("RuntimeError: connection refused")
    assert len(calls) == 1


def test_ratios_are_medians_against_ours_each_peer_and_the_baseline() -> None:
    clock = FakeClock()
    result = _run(clock, _contenders(clock))
    ours, peer, floor = result.ours, result.get("ogr2ogr"), result.baseline
    assert floor is not None

    assert [r.name for r in result.references()] == ["ours", "ogr2ogr", "COPY floor"]
    assert ratio(ours, ours) == 1.0
    assert ratio(peer, ours) == pytest.approx(1.5)
    assert ratio(ours, peer) == pytest.approx(2 / 3)
    assert ratio(ours, floor) == pytest.approx(4.0)
    assert result.throughput(ours) == pytest.approx(500.0)


def test_the_table_renders_times_throughput_and_ratios() -> None:
    clock = FakeClock()
    result = _run(clock, _contenders(clock))
    text = _text(result)

    assert "load roads (1,000 features) — 3 runs each" in text
    for header in ("min s", "median s", "features/s", "÷ ours", "÷ ogr2ogr", "÷ COPY floor"):
        assert header in text
    ours_row = next(line for line in text.splitlines() if line.startswith("│ ours"))
    assert "2.00" in ours_row and "500" in ours_row and "0.67×" in ours_row and "4.00×" in ours_row
    assert "FAILED" not in text
    assert text.rstrip().endswith(
        "load roads (1,000 features): ours 2.00 s, ogr2ogr 3.00 s → ours/ogr2ogr = 0.67×"
    )
    assert render_table(result).row_count == 3


def test_the_warm_up_is_not_timed_and_setup_runs_before_every_run() -> None:
    clock = FakeClock()
    setups: list[str] = []
    times = iter([9.0, 1.0, 2.0, 3.0])  # the 9 s warm-up must not count
    contender = Contender(
        "ours",
        Role.ours,
        run=lambda: clock.work(next(times)),
        check=_accept,
        setup=lambda: setups.append("drop"),
    )
    result = _run(clock, [contender])

    assert result.ours.seconds == [1.0, 2.0, 3.0]
    assert result.ours.best == 1.0 and result.ours.median == 2.0
    assert setups == ["drop"] * 4


def test_a_benchmark_needs_exactly_one_ours() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="exactly one"):
        _run(clock, _contenders(clock)[1:])


def test_the_json_export_holds_ratios_and_failures() -> None:
    clock = FakeClock()
    data = json.loads(json.dumps(as_json(_run(clock, _contenders(clock, peer_answer=0)))))

    ours, peer, floor = data["contenders"]
    assert ours["ratios"] == {"ours": 1.0, "ogr2ogr": None, "COPY floor": 4.0}
    assert peer["failed"] and peer["median"] is None and peer["seconds"] == []
    assert floor["per_second"] == 2000.0


def test_expect_raises_check_failed_with_the_message() -> None:
    with pytest.raises(CheckFailed, match="12 rows"):
        expect(False, "12 rows")


def test_phases_split_a_run_and_patched_restores_what_it_replaced() -> None:
    clock = FakeClock()
    phases = Phases(clock)

    class Target:
        def step(self) -> int:
            return clock.work(1.5)

    target = Target()
    original = Target.step
    with patched([(Target, "step", phases.wrap("read", original))]):
        target.step()
        target.step()
    assert Target.step is original
    assert phases.seconds == {"read": 3.0}
    assert (
        phases.describe("ours", 4.0)
        == "ours, one instrumented run (4.00 s): read 3.00 s · other 1.00 s"
    )


def test_the_command_line_defaults_and_refuses_unknown_benchmarks() -> None:
    arguments = parse_arguments([])
    assert (arguments.names, arguments.scale, arguments.repeat, arguments.json) == ([], 50, 3, None)
    assert parse_arguments(["load", "--scale", "2", "--repeat", "1"]).names == ["load"]
    with pytest.raises(SystemExit):
        parse_arguments(["nosuch"])
