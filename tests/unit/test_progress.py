"""Progress on stderr: a bar on a terminal, a line every 10 s elsewhere, nothing when quiet;
and feeding it from the simulation changes no result."""
import io

import pytest

from sim.progress import Progress, format_seconds
from sim.runner import execute
from sim.scenario import load_scenario
from tests.conftest import SCENARIOS


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_lines_come_every_interval_with_rate_and_time_left():
    clock, out = Clock(), io.StringIO()
    progress = Progress("run x", 7200.0, "h simulated", scale=3600.0, stream=out, clock=clock)
    assert progress.mode == "lines"
    log = []
    for second in range(1, 31):
        clock.t = 100.0 + second
        progress(second * 120.0, second * 1000)  # 2 simulated min and 1000 events per wall second
        log.append(out.getvalue().count("\n"))
    assert log[8] == 0 and log[9] == 1 and log[19] == 2 and log[29] == 3  # at 10, 20 and 30 s
    assert out.getvalue().splitlines()[0] == (
        "run x: 0.3/2.0 h simulated (17 %), 1,000 events/s, 10 s elapsed, about 50 s left")


def test_quiet_prints_nothing_and_a_terminal_gets_a_bar():
    clock, out = Clock(), io.StringIO()
    quiet = Progress("run x", 10.0, "runs", quiet=True, stream=out, clock=clock, tty=True)
    clock.t += 60
    quiet.advance()
    quiet.close()
    assert out.getvalue() == ""
    with Progress("sweep s", 4.0, "runs", stream=out, tty=True) as bar:
        for _ in range(4):
            bar.advance()
    assert bar.mode == "bar" and "sweep s: 100%" in out.getvalue() and "4/4 runs" in out.getvalue()


def test_the_count_never_goes_back_nor_past_the_total():
    progress = Progress("p", 10.0, "runs", stream=io.StringIO(), clock=Clock())
    progress.update(7)
    progress.update(3)
    assert progress.done == 7
    progress.update(12)
    assert progress.done == 10


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.4, "59 s"), (65, "1 min 05 s"), (7260, "2 h 01 min")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(("name", "hours"), [("serving.yaml", 1), ("residency.yaml", 12)])
def test_progress_ticks_change_no_result(name, hours):
    """The request loop (serving) and the SimPy loop (training only) report progress at
    coarse simulated-time steps; the outcome is the same with and without a listener."""
    loaded = load_scenario(SCENARIOS / name, [f"duration={hours}h", "warmup=10m"])
    heard: list[tuple[float, int]] = []
    watched = execute(loaded, lambda t, events: heard.append((t, events)))
    plain = execute(loaded)
    assert watched.summary == plain.summary
    assert repr(watched.timeseries) == repr(plain.timeseries)  # repr: NaN cells compare equal
    assert watched.events_processed == plain.events_processed
    times = [t for t, _ in heard]
    assert len(heard) > 10 and times == sorted(times) and times[-1] == hours * 3600.0
    assert heard[-1][1] == plain.events_processed
