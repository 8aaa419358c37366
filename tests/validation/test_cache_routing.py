"""Cache-aware routing against its cache-blind baseline (ttft_aware), paired on common
random numbers with ``simulate.py compare``: it must raise the prefix-cache hit rate and
cut p99 TTFT, with 95 % paired intervals that exclude zero, on the shipped
``geo_cache.yaml`` and on a world of other shape (three regions of uneven size and RTTs,
conversations only, no shared prompts, default dispatch inside pools, a 1 s stale view)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import SCENARIOS

WORLD = """\
name: chat-three-regions
seed: 3
duration: 25m
warmup: 5m
regions:
  - {name: virginia, lat: 37.4, lon: -79.8, jurisdiction: US,
     pools: [{name: h100, gpu: H100, replicas: 3, gpus_per_replica: 8, serving: {model: Llama-3.1-70B}}]}
  - {name: frankfurt, lat: 50.1, lon: 8.7, jurisdiction: EU,
     pools: [{name: a100, gpu: A100, replicas: 2, gpus_per_replica: 8, serving: {model: Llama-3.1-70B}}]}
  - {name: saopaulo, lat: -23.5, lon: -46.6, jurisdiction: BR,
     pools: [{name: h100, gpu: H100, replicas: 1, gpus_per_replica: 8, serving: {model: Llama-3.1-70B}}]}
links:
  - {a: virginia, b: frankfurt, rtt_ms: 90}
  - {a: virginia, b: saopaulo, rtt_ms: 120}
  - {a: frankfurt, b: saopaulo, rtt_ms: 200}
inference:
  - name: chat
    origin: {virginia: 0.3, frankfurt: 0.3, saopaulo: 0.4}
    arrival: {process: poisson, rate_per_s: 1.5}
    service: {dist: tokens, input_tokens: {mean: 400, cv: 1.0}, output_tokens: {mean: 200, cv: 1.0}}
    sessions: {turns: 6, think: 20s}
    slo: {ttft_ms: 1000, tpot_ms: 100}
scheduler:
  routing: cache_aware
  sync_delay: 1s
"""


def compared(cli, tmp_path, scenario, sets=()):
    out = tmp_path / "cmp"
    args = [a for s in sets for a in ("--set", s)]
    result = cli("compare", str(scenario), *args, "--policy", "ttft_aware", "--policy", "cache_aware",
                 "--seeds", "3", "--quiet", "--metric", "inference.prefix_cache.hit_rate",
                 "--metric", "inference.ttft_ms.p99", "--out", str(out))
    assert result.code == 0, result.err
    results = json.loads((out / "comparison.json").read_text())["results"]
    return {metric: results[metric]["cache_aware"]["diff"]["ci"] for metric in results}


def assert_cache_aware_wins(ci):
    low, high = ci["inference.prefix_cache.hit_rate"]
    assert low > 0.05, ci  # more hits, by at least 5 points
    low, high = ci["inference.ttft_ms.p99"]
    assert high < 0, ci  # a lower p99 TTFT


def test_on_geo_cache(cli, tmp_path):
    assert_cache_aware_wins(compared(cli, tmp_path, SCENARIOS / "geo_cache.yaml", ["duration=25m", "warmup=5m"]))


@pytest.mark.parametrize("sync_delay", ["1s", "10s"])
def test_on_conversations_in_three_uneven_regions(cli, tmp_path, sync_delay):
    path = tmp_path / "chat.yaml"
    path.write_text(WORLD.replace("sync_delay: 1s", f"sync_delay: {sync_delay}"))
    assert_cache_aware_wins(compared(cli, tmp_path, path))
