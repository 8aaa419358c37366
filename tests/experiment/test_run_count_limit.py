"""An experiment of more runs than one machine can lay out is refused at once (exit 2, nothing
written): ``--seeds 100000000`` used to build its task list for ever before the first run."""
from __future__ import annotations

import time

import pytest

from sim.experiment.tasks import MAX_RUNS
from tests.conftest import SCENARIOS
from tests.experiment.test_uncertainty import MMC as UNCERTAIN

MMC = str(SCENARIOS / "validation" / "mmc.yaml")
TWO = str(SCENARIOS / "two_regions.yaml")
HUGE = "100000000"


@pytest.mark.parametrize(("args", "message"), [
    (["sweep", MMC, "--grid", "inference[0].arrival.rate_per_s=1,2", "--seeds", HUGE],
     "--grid x --seeds: 200,000,000 runs"),
    (["sweep", MMC, "--grid", "regions[0].pools[0].replicas=" + ",".join(map(str, range(1, 501))),
      "--grid", "inference[0].arrival.rate_per_s=" + ",".join(map(str, range(1, 502)))],
     "--grid x --seeds: 250,500 runs"),
    (["compare", TWO, "--policy", "nearest", "--policy", "latency_aware", "--seeds", HUGE],
     "--policy x --seeds: 200,000,000 runs"),
    (["plan", str(SCENARIOS / "planning.yaml"), "--target", "inference.ttft_ms.p99<=1200",
      "--vary", "regions.eu-west.pools.a100.replicas", "--seeds", HUGE], "--seeds (per value tried): 100,000,000 runs"),
    (["plan-calendar", str(SCENARIOS / "fleet_2027.yaml"), "--check", HUGE], "--check: 100,000,000 runs"),
])
def test_too_many_runs_are_refused_before_anything_is_laid_out(tmp_path, cli, args, message):
    start = time.perf_counter()
    result = cli(*args, "--root", str(tmp_path / "results"), "--quiet")
    assert result.code == 2, result.err
    assert result.err.strip() == f"{message}, over the limit of {MAX_RUNS:,} for one experiment " \
                                 "(split it, or use fewer values or seeds)"
    assert time.perf_counter() - start < 30  # it used to run until memory ran out
    assert not (tmp_path / "results").exists()


def test_an_uncertainty_study_of_too_many_runs_is_refused(tmp_path, cli):
    path = tmp_path / "mmc.yaml"
    path.write_text(UNCERTAIN.format(replicas=8))
    result = cli("uncertainty", str(path), "--samples", "1000", "--seeds", "1000", "--root", str(tmp_path / "r"))
    assert (result.code, result.err.strip()) == (2, "--samples x --seeds: 1,000,000 runs, over the limit of 100,000 "
                                                    "for one experiment (split it, or use fewer values or seeds)")
    assert not (tmp_path / "r").exists()


def test_the_limit_itself_is_allowed(tmp_path):
    from sim.experiment.tasks import check_run_count
    check_run_count(MAX_RUNS, "--seeds")  # no error at the limit
    with pytest.raises(Exception, match="100,001 runs"):
        check_run_count(MAX_RUNS + 1, "--seeds")
