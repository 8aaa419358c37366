"""The closing summary of `run`, from hand-made result files: every figure present is shown,
every null is left out or explained, unfinished training jobs show how far they got."""
import json

from sim.report.closing import closing_summary

STATS_NULL = {"mean": None, "p50": None, "p95": None, "p99": None}


def write_run(folder, inference=None, training=None, jobs=""):
    summary = {"scenario": "s", "seed": 3, "sim_time_s": 7200.0, "warmup_s": 3600.0,
               "utilization": {"mean": 0.5},
               "energy": {"kwh": 10.0, "co2_kg": 1.0, "cost_usd": 1.5, "idle_fraction": 0.1}}
    if inference is not None:
        summary["inference"] = inference
    if training is not None:
        summary["training"] = training
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "timeseries.csv").write_text(
        "t_start_s,t_end_s,region,active_gpus,busy_gpus\n"
        "0,3600,a,8,8\n3600,5400,a,8,4\n5400,7200,a,4,2\n3600,7200,b,2,1\n")
    if jobs:
        (folder / "jobs.csv").write_text(jobs)
    return folder


def inference(**changes):
    base = {"arrived": 10, "completed": 7, "dropped": 2, "in_flight": 1, "rejected": 1, "timed_out": 1,
            "failed": 0, "latency_ms": {"mean": 900.0, "p50": 800.0, "p95": 1500.0, "p99": 2400.0},
            "ttft_ms": STATS_NULL, "tpot_ms": STATS_NULL, "slo_attainment": None}
    return {**base, **changes}


def test_without_a_token_model_or_objectives(tmp_path):
    lines = closing_summary(write_run(tmp_path / "r", inference()))
    assert lines == [
        "s: seed 3, 2 h simulated (1 h measured after the warm-up), mean utilisation 50.0 %",
        "  requests: 10 arrived, 7 completed, 2 dropped (1 rejected, 1 timed out), 1 still in flight at the end",
        "  latency p50 800 ms, p99 2,400 ms",
        "  SLO attainment: none (no workload sets an objective)",
        "  GPU-hours: 8 active, 4 busy; cost $1.50 of electricity for 10 kWh (GPUs themselves are not priced)"]


def test_batching_figures_and_no_completed_request(tmp_path):
    tokens = inference(ttft_ms={"mean": 1, "p50": 120.0, "p95": 2, "p99": 350.0},
                       tpot_ms={"mean": 1, "p50": 35.25, "p95": 2, "p99": 61.0}, slo_attainment=0.98765)
    lines = closing_summary(write_run(tmp_path / "r", tokens))
    assert lines[2] == "  latency p50 800 ms, p99 2,400 ms; TTFT p50 120 ms, p99 350 ms; TPOT p50 35.2 ms, p99 61 ms"
    assert lines[3] == "  SLO attainment 98.77 %"
    idle = closing_summary(write_run(tmp_path / "idle", inference(latency_ms=STATS_NULL, completed=0)))
    assert idle[2] == "  latency: none (no request completed in the measured window)"
    assert not any("None" in line or "null" in line for line in lines + idle)


def test_unfinished_jobs_show_their_share_of_work_done(tmp_path):
    training = {"submitted": 3, "completed": 1, "running": 1, "queued": 1,
                "jct_h": {"mean": 1.0, "p50": 1.25, "p95": 1.5}}
    jobs = ("job,status,work,remaining\n"
            "0,completed,10,0\n1,queued,8,8\n2,running,4,1\n")
    lines = closing_summary(write_run(tmp_path / "r", training=training, jobs=jobs))
    assert lines[1:3] == [
        "  training: 3 jobs submitted, 1 completed, 1 running and 1 queued at the end; job completion time p50 1.25 h",
        "  not finished: job 2 75 % done (running), job 1 0 % done (queued)"]
