"""Single-GPU jobs with exponential durations on c GPUs under FIFO placement are an M/M/c
queue: their waits must match Erlang C."""
import csv
import math

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.validation.test_mmc import T99, theory

JOBS = """\
name: jobs-mmc
seed: {seed}
duration: 60d
warmup: 5d
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: {c}, gpus_per_replica: 1}}]}}
training:
  - name: t
    jobs: {{source: poisson, rate_per_h: {rate}, gpus: 1, work: {{kind: gpu_hours, mean: {mean}, dist: exponential}}}}
scheduler:
  placement: fifo_first_fit
"""


@pytest.mark.slow  # long statistics: the slow tier (CI runs it with -m slow)
@pytest.mark.parametrize("c, rate, mean_h", [(4, 3.0, 1.0), (8, 2.4, 3.0)])  # rho 0.75, 0.9
def test_job_waits_match_erlang_c(c, rate, mean_h, tmp_path):
    means, fractions = [], []
    for seed in range(1, 7):
        path = tmp_path / f"s{seed}.yaml"
        path.write_text(JOBS.format(seed=seed, c=c, rate=rate, mean=mean_h))
        out = tmp_path / f"r{seed}"
        result = run_cli("run", str(path), "--out", str(out))
        assert result.code == 0, result.err
        jobs = [j for j in csv.DictReader(open(out / "jobs.csv"))
                if float(j["arrival_s"]) >= 5 * 86400 and j["start_s"] != ""]
        waits = np.array([float(j["wait_s"]) / 3600 for j in jobs])
        means.append(waits.mean())
        fractions.append((waits > 1e-9).mean())
    wq, p_wait = theory(c, rate, mean_h)
    for values, expected in ((np.array(means), wq), (np.array(fractions), p_wait)):
        half = T99[len(values) - 1] * values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - expected) <= half, (values.mean(), expected, half)
