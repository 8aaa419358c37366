"""Serial, process-pool and Dask runs of the same sweep give byte-identical results."""
import logging

import pytest

from sim.experiment import parse_grid, plan_sweep, run_sweep
from tests.experiment import MMC, TINY, cli_sets

GRID = "inference.req.arrival.rate_per_s=6,7"


def run_files(folder):
    """Every run's summary.json and timeseries.csv, by run name."""
    return {(run.name, name): (run / name).read_bytes()
            for run in sorted(folder.glob("p*")) for name in ("summary.json", "timeseries.csv", "latency_cdf.csv")}


def sweep(out, **backend):
    plan = plan_sweep(MMC, [parse_grid(GRID)], seeds=2, sets=TINY, out=out)
    outcome = run_sweep(plan, progress=False, **backend)
    assert [r["status"] for r in outcome.results] == ["ok"] * 4, outcome.results
    return run_files(out)


def test_serial_process_pool_and_dask_results_are_byte_identical(tmp_path):
    serial = sweep(tmp_path / "serial", workers=1)
    pooled = sweep(tmp_path / "pool", backend="process", workers=2)
    dasked = sweep(tmp_path / "dask", backend="dask", workers=2)
    assert len(serial) == 12
    assert pooled == serial
    assert dasked == serial


def test_sweep_on_an_existing_dask_scheduler(tmp_path, cli):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        result = cli("sweep", MMC, *cli_sets(TINY), "--grid", GRID, "--out", str(tmp_path / "d"),
                     "--backend", "dask", "--scheduler", cluster.scheduler_address)
        assert result.code == 0, result.err
        assert "2 runs: 2 ok" in result.out
        # The runs really went to the cluster's workers.
        with distributed.Client(cluster) as client:
            log = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.transition_log))
        assert log > 0


def test_unreachable_scheduler_exits_2(tmp_path, cli):
    dask = pytest.importorskip("dask")
    pytest.importorskip("dask.distributed")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = cli("sweep", MMC, *cli_sets(TINY), "--grid", GRID, "--out", str(tmp_path / "d"),
                     "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert result.code == 2
    assert result.err.startswith("--scheduler: cannot connect to 'tcp://127.0.0.1:9'")
    assert "Traceback" not in result.err
