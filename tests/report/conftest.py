"""Result folders built once per session from small scenarios, and their reports.

``FULL`` has every kind of data a run can have: inference served by batching replicas
with TTFT, TPOT and end-to-end objectives and ``requests.npz``,
training on a dataset whose cheapest placement copies it across a border, a users-only
region, and energy; it simulates in about a second.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sim.report import build_report
from tests.conftest import run_cli

FULL = """\
name: report-full
seed: 3
duration: 8h
warmup: 1h
regions:
  - name: eastus
    price_usd_per_kwh: 0.40
    pools:
      - {name: inf, gpu: H100, replicas: 2, gpus_per_replica: 8, serves: inference, serving: {model: Llama-2-70B}}
      - {name: train, gpu: H100, replicas: 1, gpus_per_replica: 8, serves: training}
  - name: westeurope
    price_usd_per_kwh: 0.03
    pools:
      - {name: inf, gpu: H100, replicas: 1, gpus_per_replica: 8, serves: inference, serving: {model: Llama-2-70B}}
      - {name: train, gpu: H100, replicas: 1, gpus_per_replica: 8, serves: training}
  - name: japaneast
    pools: []
datasets:
  - {name: crawl, size_gb: 5, home: eastus}
inference:
  - name: chat
    origin: {eastus: 0.5, westeurope: 0.3, japaneast: 0.2}
    arrival: {process: poisson, rate_per_s: 1}
    service: {dist: tokens, input_tokens: {mean: 800, cv: 1.0}, output_tokens: {mean: 60, cv: 1.0}}
    slo: {ttft_ms: 1000, tpot_ms: 60, e2e_ms: 4000}
training:
  - name: tune
    dataset: crawl
    jobs: {source: poisson, rate_per_h: 2, gpus: 8, work: {kind: gpu_hours, mean: 40, cv: 0.5}}
scheduler:
  placement: cheapest
failures:
  outages: [{region: westeurope, at: 3h, duration: 1h}]
  links: [{a: eastus, b: japaneast, at: 5h, duration: 30m}]
metrics:
  bucket: 30m
  requests: true
"""

# Two regions serving users on two continents; enough traffic that routing matters.
SMALL = """\
name: report-small
seed: 5
duration: 1h
warmup: 10m
regions:
  - name: eastus
    pools: [{name: p, gpu: H100, replicas: 2, gpus_per_replica: 8, slots_per_replica: 2}]
  - name: westeurope
    pools: [{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8, slots_per_replica: 2}]
inference:
  - name: chat
    origin: {eastus: 0.6, westeurope: 0.4}
    arrival: {process: poisson, rate_per_s: 2}
    service: {dist: exponential, mean_s: 1.0}
    slo_ms: 1500
metrics:
  bucket: 10m
"""

ALL_FORMATS = ("png", "svg", "pdf")


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of the report pages and every chart file."""
    files = [folder / "report.html", folder / "report.md", *sorted((folder / "charts").iterdir())]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def simulate(*args: str) -> Path:
    result = run_cli(*args)
    assert result.code == 0, result.err
    return Path(result.out.splitlines()[-1])


@pytest.fixture(scope="session")
def full_report(tmp_path_factory):
    """(run folder, Report, digests) of FULL reported in every format."""
    base = tmp_path_factory.mktemp("full")
    (base / "full.yaml").write_text(FULL)
    run = simulate("run", str(base / "full.yaml"), "--out", str(base / "run"))
    report = build_report(run, ALL_FORMATS)
    return run, report, digests(run)


@pytest.fixture(scope="session")
def comparison_folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("cmp")
    (base / "small.yaml").write_text(SMALL)
    return simulate("compare", str(base / "small.yaml"), "--policy", "nearest", "--policy", "least_loaded",
                    "--seeds", "2", "--out", str(base / "cmp"))


@pytest.fixture(scope="session")
def sweep_folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("sweep")
    (base / "small.yaml").write_text(SMALL)
    return simulate("sweep", str(base / "small.yaml"), "--grid", "inference.0.arrival.rate_per_s=1,2",
                    "--seeds", "2", "--out", str(base / "sweep"))
