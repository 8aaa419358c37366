"""Training job generation: Poisson jobs, work models, trace replays, streams and errors."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.scenario.model import Scenario
from sim.streams import Streams
from sim.workload.philly_fit import PHILLY_MAX_S, PHILLY_MIN_S
from sim.workload.training import (
    V100_TENSOR_TFLOPS,
    JobBatch,
    catalogue_gpu_types,
    gavel_gang_rate,
    generate_jobs,
    read_alibaba_pods,
)
from tests.conftest import SHARED_DATA

H = 3600.0
Z999 = 3.2905  # two-sided 99.9 % normal quantile


def scenario(*training: dict, duration: float = 100 * H, seed: int = 0) -> Scenario:
    return Scenario.model_validate({"name": "t", "seed": seed, "duration": duration,
                                    "regions": [{"name": "a", "lat": 0.0, "lon": 0.0}],
                                    "training": list(training)})


def poisson(name: str = "w", rate_per_h: float = 30.0, gpus=8, work=None, **extra) -> dict:
    work = work or {"kind": "gpu_hours", "mean": 10.0}
    return {"name": name, "jobs": {"source": "poisson", "rate_per_h": rate_per_h, "gpus": gpus,
                                   "work": work}, **extra}


def jobs(s: Scenario, base_dir: Path = Path("."), seed: int | None = None) -> JobBatch:
    return generate_jobs(s, Streams(s.seed if seed is None else seed), base_dir, source="s.yaml")


def within(count: float, mean: float, var: float) -> bool:
    return abs(count - mean) <= Z999 * math.sqrt(var)


# -- batch shape ----------------------------------------------------------------------------
def test_no_training_gives_an_empty_batch_with_every_catalogue_type():
    batch = jobs(scenario())
    assert len(batch) == 0 and batch.rate_table.shape == (0, len(batch.gpu_types))
    assert batch.gpu_types == catalogue_gpu_types() == JobBatch.empty().gpu_types
    assert {"A100", "H100", "B200", "MI300X"} <= set(batch.gpu_types)
    assert len(set(batch.gpu_types)) == len(batch.gpu_types)  # aliases folded


def test_arrays_have_the_promised_dtypes_and_order():
    batch = jobs(scenario(poisson(), poisson("v", gpus=1)))
    assert batch.arrival_s.dtype == np.float64 and batch.work.dtype == np.float64
    assert batch.workload.dtype == np.int16 and batch.gpus.dtype == np.int32 and batch.kind.dtype == np.int32
    assert np.all(np.diff(batch.arrival_s) >= 0)
    assert batch.arrival_s.min() >= 0 and batch.arrival_s.max() < 100 * H
    assert batch.rate_table.shape == (len(batch.kind_names), len(batch.gpu_types))


# -- poisson --------------------------------------------------------------------------------
def test_poisson_job_count_is_within_the_999_interval():
    counts = [len(jobs(scenario(poisson(rate_per_h=30.0)), seed=seed)) for seed in range(5)]
    assert all(within(c, 3000, 3000) for c in counts), counts
    assert len(set(counts)) > 1  # the count is random, not rate x duration


def test_poisson_arrivals_are_uniform_over_the_run():
    t = jobs(scenario(poisson(rate_per_h=100.0))).arrival_s
    first_half = np.sum(t < 50 * H)
    assert within(first_half, len(t) / 2, len(t) / 4)


def test_gang_sizes_follow_the_weights():
    batch = jobs(scenario(poisson(rate_per_h=100.0, gpus={"choices": [1, 2, 8], "weights": [1, 1, 2]})))
    n = len(batch)
    for size, p in ((1, 0.25), (2, 0.25), (8, 0.5)):
        assert within(np.sum(batch.gpus == size), n * p, n * p * (1 - p)), size


def test_gang_sizes_default_to_equal_weights():
    batch = jobs(scenario(poisson(rate_per_h=100.0, gpus={"choices": [4, 16]})))
    assert within(np.sum(batch.gpus == 4), len(batch) / 2, len(batch) / 4)


def test_mismatched_gang_weights_are_reported():
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(poisson(gpus={"choices": [1, 2], "weights": [1.0]})))
    assert str(exc.value) == ("s.yaml: training[0].jobs.gpus.weights: must give one weight per choice, "
                              "summing above zero (got [1.0])")


def test_gpu_hours_job_on_g_reference_gpus_lasts_w_over_g_hours():
    batch = jobs(scenario(poisson(gpus=4, work={"kind": "gpu_hours", "mean": 10.0, "reference_gpu": "A100"})))
    assert np.all(batch.work == 10.0 * H)
    assert batch.duration_s(0, "A100") == pytest.approx(2.5 * H)
    assert batch.duration_s(0, "A100-SXM4-80GB") == batch.duration_s(0, "A100")  # alias


def test_gpu_hours_scale_with_bf16_tflops():
    batch = jobs(scenario(poisson(gpus=8, work={"kind": "gpu_hours", "mean": 80.0})))  # reference H100
    assert batch.duration_s(0, "H100") == pytest.approx(10 * H)
    assert batch.duration_s(0, "A100") / batch.duration_s(0, "H100") == pytest.approx(989.4 / 312)


def test_gpu_hours_lognormal_and_exponential_have_the_asked_mean():
    for work, cv in (({"kind": "gpu_hours", "mean": 5.0, "cv": 0.5}, 0.5),
                     ({"kind": "gpu_hours", "mean": 5.0, "dist": "exponential"}, 1.0)):
        hours = jobs(scenario(poisson(rate_per_h=200.0, work=work))).work / H
        assert within(hours.mean() * len(hours), 5.0 * len(hours), (5.0 * cv) ** 2 * len(hours)), work
        assert hours.std() / hours.mean() == pytest.approx(cv, rel=0.1)


def test_steps_rate_is_gpus_times_per_gpu_throughput():
    work = {"kind": "steps", "mean": 36000.0, "throughput_steps_per_s": {"H100": 2.0, "A100-80GB": 1.0}}
    batch = jobs(scenario(poisson(gpus={"choices": [2, 4]}, work=work)))
    assert np.all(batch.work == 36000.0)
    i = int(np.argmax(batch.gpus == 4))
    assert batch.duration_s(i, "H100") == pytest.approx(36000 / 8)
    assert batch.duration_s(i, "A100") == pytest.approx(36000 / 4)
    assert batch.duration_s(i, "B200") == math.inf  # not listed


def test_gpu_types_restriction_gives_inf_elsewhere_and_does_not_leak():
    batch = jobs(scenario(poisson("only", gpus=8, gpu_types=["A100-80GB"]), poisson("any", gpus=8)))
    only = int(np.argmax(batch.workload == 0))
    anywhere = int(np.argmax(batch.workload == 1))
    assert math.isfinite(batch.duration_s(only, "A100"))
    assert all(batch.duration_s(only, t) == math.inf for t in batch.gpu_types if t != "A100")
    assert all(math.isfinite(batch.duration_s(anywhere, t)) for t in batch.gpu_types)
    assert batch.kind[only] != batch.kind[anywhere]


def test_unknown_gpu_type_is_reported():
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(poisson(gpu_types=["V100"])))
    assert str(exc.value).startswith("s.yaml: training[0].gpu_types[0]: unknown GPU type (valid: ")
    assert str(exc.value).endswith("(got 'V100')")


def test_philly_work_is_a_fitted_runtime_times_gpus():
    batch = jobs(scenario(poisson(rate_per_h=100.0, gpus={"choices": [1, 8]},
                                  work={"kind": "philly", "reference_gpu": "A100"})))
    runtime = np.array([batch.duration_s(i, "A100") for i in range(len(batch))])
    assert np.allclose(batch.work, runtime * batch.gpus)
    assert runtime.min() >= PHILLY_MIN_S and runtime.max() <= PHILLY_MAX_S
    assert 900 < np.median(runtime) < 1500  # Philly's median is 1,186 s


def test_max_jobs_keeps_the_first_jobs():
    full = jobs(scenario(poisson()))
    cut = jobs(scenario(poisson(max_jobs=7)))
    assert len(cut) == 7 and np.array_equal(cut.arrival_s, full.arrival_s[:7])


# -- streams --------------------------------------------------------------------------------
def test_same_seed_same_jobs_other_seed_other_jobs():
    a, b = jobs(scenario(poisson(), seed=3)), jobs(scenario(poisson(), seed=3))
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("arrival_s", "gpus", "work", "kind"))
    assert not np.array_equal(a.arrival_s, jobs(scenario(poisson(), seed=4)).arrival_s)


def test_a_workload_is_unchanged_by_another_one():
    alone = jobs(scenario(poisson("w", gpus={"choices": [1, 8]}, work={"kind": "gpu_hours", "mean": 2.0, "cv": 1.0})))
    mixed = jobs(scenario(poisson("x", rate_per_h=50.0),
                          poisson("w", gpus={"choices": [1, 8]}, work={"kind": "gpu_hours", "mean": 2.0, "cv": 1.0})))
    mine = mixed.workload == 1
    assert np.array_equal(alone.arrival_s, mixed.arrival_s[mine])
    assert np.array_equal(alone.gpus, mixed.gpus[mine]) and np.array_equal(alone.work, mixed.work[mine])


def test_arrivals_do_not_depend_on_the_work_model():
    a = jobs(scenario(poisson(work={"kind": "gpu_hours", "mean": 1.0, "cv": 2.0})))
    b = jobs(scenario(poisson(work={"kind": "philly"})))
    assert np.array_equal(a.arrival_s, b.arrival_s)


def test_sizes_and_work_do_not_depend_on_the_arrivals():
    # Own stream (jobwork/<name>): the k-th job's size and work stay put when the rate changes.
    for work in ({"kind": "gpu_hours", "mean": 3.0, "cv": 1.0}, {"kind": "philly"}):
        spec = {"gpus": {"choices": [1, 2, 8]}, "work": work}
        few = jobs(scenario(poisson(rate_per_h=5.0, **spec)))
        many = jobs(scenario(poisson(rate_per_h=50.0, **spec)))
        assert np.array_equal(few.gpus, many.gpus[:len(few)]), work
        assert np.array_equal(few.work, many.work[:len(few)]), work


# -- gavel ----------------------------------------------------------------------------------
THROUGHPUTS = """\
gpu_type,job_type,scale_factor_gpus,throughput_steps_per_s
v100,ResNet,1,10.0
v100,ResNet,2,16.0
k80,ResNet,1,2.0
v100,LM,1,5.0
"""
TRACE = """\
job_type,total_steps,arrival_time_s,scale_factor_gpus
ResNet,1000,0.0,1
LM,500,100.0,1
ResNet,3000,200.0,2
ResNet,4000,300.0,8
LM,500,9000.0,1
"""


def gavel(tmp_path: Path, trace: str = TRACE, throughputs: str = THROUGHPUTS, **jobs_extra) -> dict:
    (tmp_path / "trace.csv").write_text(trace)
    (tmp_path / "thr.csv").write_text(throughputs)
    return {"name": "g", "jobs": {"source": "gavel", "path": "trace.csv", "throughputs_path": "thr.csv",
                                  **jobs_extra}}


def test_gavel_replay(tmp_path):
    batch = jobs(scenario(gavel(tmp_path, time_scale=2.0), duration=1000.0), tmp_path)
    assert batch.arrival_s.tolist() == [0.0, 50.0, 100.0, 150.0]  # 9000/2 is past the end
    assert batch.gpus.tolist() == [1, 1, 2, 8]
    assert batch.work.tolist() == [1000.0, 500.0, 3000.0, 4000.0]
    a100 = 312 / V100_TENSOR_TFLOPS
    assert batch.duration_s(0, "A100") == pytest.approx(1000 / (10.0 * a100))
    assert batch.duration_s(2, "A100") == pytest.approx(3000 / (16.0 * a100))
    assert batch.duration_s(3, "A100") == pytest.approx(4000 / (16.0 * 4 * a100))  # from scale 2
    assert batch.kind_names[batch.kind[0]] == "g/ResNet x1"


def test_gavel_gang_rate_uses_the_nearest_measured_scale():
    measured = {1: 10.0, 2: 16.0, 8: 40.0}
    assert [gavel_gang_rate(measured, s) for s in (1, 2, 4, 8, 16)] == [10.0, 16.0, 32.0, 40.0, 80.0]
    assert gavel_gang_rate({4: 20.0}, 2) == 10.0


def test_gavel_ties_keep_workload_order(tmp_path):
    one = gavel(tmp_path)
    two = {**one, "name": "h"}
    batch = jobs(scenario(one, two, duration=1000.0), tmp_path)
    assert batch.workload.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert batch.kind[0] != batch.kind[1]


def test_gavel_missing_throughput_names_file_line_and_job_type(tmp_path):
    trace = TRACE + "CycleGAN,10,400.0,1\nCycleGAN,10,500.0,1\n"
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(gavel(tmp_path, trace=trace)), tmp_path)
    assert str(exc.value) == "trace.csv:7: job_type: no v100 throughput in thr.csv (got 'CycleGAN')"


def test_gavel_bad_rows_are_reported_with_their_lines(tmp_path):
    trace = TRACE + "ResNet,-3,400.0,1\nResNet,10,soon,0\n"
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(gavel(tmp_path, trace=trace)), tmp_path)
    assert str(exc.value).splitlines() == [
        "trace.csv:7: total_steps: must be a positive integer (got '-3')",
        "trace.csv:8: arrival_time_s: must be a non-negative number of seconds (got 'soon')",
        "trace.csv:8: scale_factor_gpus: must be a positive integer (got '0')"]


def test_gavel_missing_files_are_reported(tmp_path):
    spec = gavel(tmp_path)
    (tmp_path / "thr.csv").unlink()
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(spec), tmp_path)
    assert str(exc.value) == "s.yaml: training[0].jobs.throughputs_path: file not found (got 'thr.csv')"
    (tmp_path / "trace.csv").unlink()
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(spec), tmp_path)
    assert str(exc.value) == "s.yaml: training[0].jobs.path: file not found (got 'trace.csv')"


def test_gavel_missing_column_is_reported(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(gavel(tmp_path, trace="job_type,total_steps,arrival_time_s\nLM,1,0\n")), tmp_path)
    assert str(exc.value) == ("trace.csv:1: scale_factor_gpus: missing column "
                              "(header: job_type,total_steps,arrival_time_s)")


# -- alibaba --------------------------------------------------------------------------------
PODS = """\
name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
p0,1000,1024,1,1000,,LS,Running,0,3600,0
p1,1000,1024,0,0,,LS,Running,10,500,10
p2,1000,1024,1,250,,BE,Running,20,1820,20
p3,1000,1024,8,1000,V100M16|V100M32,LS,Succeeded,30,7230,30
p4,1000,1024,2,1000,,LS,Pending,40,100,
p5,1000,1024,1,1000,,LS,Failed,50,50,50
p6,1000,1024,4,1000,,LS,Running,5000,6000,5100
"""


def alibaba(tmp_path: Path, pods: str = PODS, **jobs_extra) -> dict:
    (tmp_path / "pods.csv").write_text(pods)
    return {"name": "al", "jobs": {"source": "alibaba", "path": "pods.csv", **jobs_extra}}


def test_alibaba_replay(tmp_path):
    batch = jobs(scenario(alibaba(tmp_path, time_scale=10.0, reference_gpu="A100"), duration=400.0), tmp_path)
    assert batch.arrival_s.tolist() == [0.0, 2.0, 3.0]  # p6 arrives at 500 s, past the end
    assert batch.gpus.tolist() == [1, 1, 8]             # the quarter-GPU pod counts as one GPU
    assert [batch.duration_s(i, "A100") for i in range(3)] == pytest.approx([3600.0, 1800.0, 7200.0])
    assert batch.work.tolist() == [3600.0, 1800.0, 8 * 7200.0]
    assert batch.duration_s(0, "H100") == pytest.approx(3600.0 * 312 / 989.4)


def test_alibaba_skipped_pods_are_counted(tmp_path):
    (tmp_path / "pods.csv").write_text(PODS)
    pods = read_alibaba_pods(tmp_path / "pods.csv", "pods.csv")
    assert (len(pods.gpus), pods.cpu_only, pods.never_scheduled, pods.non_positive, pods.fractional) == (4, 1, 1, 1, 1)


def test_alibaba_bad_rows_are_reported_with_their_lines(tmp_path):
    pods = PODS + "p7,1,1,one,1000,,LS,Running,0,1,0\np8,1,1,1,1500,,LS,Running,-5,1,0\n"
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(alibaba(tmp_path, pods=pods)), tmp_path)
    assert str(exc.value).splitlines() == [
        "pods.csv:9: num_gpu: must be a non-negative integer (got 'one')",
        "pods.csv:10: gpu_milli: must be an integer from 0 to 1000 (got '1500')",
        "pods.csv:10: creation_time: must be a non-negative number of seconds (got '-5')"]


def test_alibaba_short_row_is_reported(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        jobs(scenario(alibaba(tmp_path, pods=PODS + "p9,1,1\n")), tmp_path)
    assert str(exc.value) == "pods.csv:9: <top>: has 3 fields, expected 11"


# -- the real shared traces -----------------------------------------------------------------
needs_shared = pytest.mark.skipif(not (SHARED_DATA / "gavel_msr_vc_ee9e8c_seed0.csv").is_file(),
                                  reason=f"shared public data not found at {SHARED_DATA}")


def real_gavel(duration_d: float) -> JobBatch:
    return jobs(scenario({"name": "g", "jobs": {
        "source": "gavel", "path": "gavel_msr_vc_ee9e8c_seed0.csv",
        "throughputs_path": "gavel_isolated_throughputs_steps_per_s.csv"}}, duration=duration_d * 86400),
        SHARED_DATA)


@needs_shared
def test_real_gavel_trace_has_2000_jobs_over_52_days():
    batch = real_gavel(60)
    assert len(batch) == 2000
    assert batch.arrival_s[-1] / 86400 == pytest.approx(52.18, abs=0.01)
    assert np.all(np.isfinite([batch.duration_s(i, "H100") for i in range(len(batch))]))
    assert len(real_gavel(7)) == 6  # the trace starts slowly: 6 arrivals in its first week


@needs_shared
def test_real_alibaba_pod_counts():
    pods = read_alibaba_pods(SHARED_DATA / "alibaba_openb_pod_list_default.csv", "pods")
    assert (len(pods.gpus), pods.cpu_only, pods.never_scheduled, pods.non_positive) == (6203, 1088, 861, 0)
    assert pods.fractional == 2573
    batch = jobs(scenario({"name": "al", "jobs": {"source": "alibaba", "path": "alibaba_openb_pod_list_default.csv"}},
                          duration=150 * 86400), SHARED_DATA)
    assert len(batch) == 6203 and int(batch.gpus.sum()) == 6129 + 2 * 15 + 4 * 15 + 8 * 44
