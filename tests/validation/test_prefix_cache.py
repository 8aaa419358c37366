"""The prefix cache against an exact LRU replay and against Che's approximation.

One batching replica, requests spaced far enough apart that each completes before the
next arrives, every request opening with one of N shared prompts of equal length drawn
independently with Zipf popularity, and a prefix cache capped at C prompts: the cache is
then a plain LRU over the stream of prompts. Two references it does not produce:

- an LRU written plainly in the test, replaying the same stream: every hit and miss must
  agree;
- Che's approximation for an LRU under independent references (Che, Tung and Wang 2002;
  Fricker, Robert and Roberts 2012): with ``T`` solving ``sum_i (1 - exp(-p_i T)) = C``, prompt
  ``i`` hits with probability ``1 - exp(-p_i T)``; the overall hit rate must match it.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
from scipy.optimize import brentq

from sim.scenario import parse_scenario
from tests.traced import traced

SCENARIO = """\
name: lru
seed: {seed}
duration: {duration}s
regions:
  - name: a
    lat: 0
    lon: 0
    pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8,
              serving: {{model: Llama-2-70B, prefix_cache_tokens: {cap}}}}}]
inference:
  - name: w
    origin: {{a: 1}}
    arrival: {{process: trace, path: {trace}, loop: false}}
    service: {{dist: tokens}}
    shared_prefix: {{prompts: {prompts}, tokens: {{mean: {length}, cv: 0}}, popularity: {s}}}
"""


def run(tmp_path, prompts, capacity, s, n=12000, seed=1, length=1000):
    # 4 s apart: a request (a 1,000-token prompt, 8 output tokens) takes well under 1 s.
    trace = tmp_path / "steady.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(f"{4 * k},{50},{8}\n" for k in range(n)))
    text = SCENARIO.format(seed=seed, duration=4 * n, cap=capacity * length, trace=trace, prompts=prompts,
                           length=length, s=s)
    log = traced(parse_scenario(text, str(tmp_path / "lru.yaml")).scenario).log
    assert (log.status == 1).all() and (log.wait_s == 0).all()  # nobody ever waited: one at a time
    return log


def lru_replay(stream: list[int], capacity: int) -> np.ndarray:
    cache: OrderedDict[int, None] = OrderedDict()
    hits = []
    for prompt in stream:
        hit = prompt in cache
        hits.append(hit)
        if hit:
            cache.move_to_end(prompt)
        else:
            cache[prompt] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return np.array(hits)


def che_hit_rate(prompts: int, capacity: int, s: float) -> float:
    p = np.arange(1, prompts + 1, dtype=float) ** -s
    p /= p.sum()
    t = brentq(lambda t: np.sum(1 - np.exp(-p * t)) - capacity, 1e-9, 1e9)
    return float(np.sum(p * (1 - np.exp(-p * t))))


@pytest.mark.parametrize("prompts,capacity,s", [(200, 40, 0.8), (500, 50, 1.0), (100, 60, 0.0)])
def test_hits_equal_a_plain_lru_replay(tmp_path, prompts, capacity, s):
    log = run(tmp_path, prompts, capacity, s, n=4000)
    hits = log.cached_tokens > 0
    np.testing.assert_array_equal(hits, lru_replay(log.prefix.tolist(), capacity))
    assert 0.05 < hits.mean() < 0.95  # the cap binds: hits and misses both happen


@pytest.mark.parametrize("prompts,capacity,s", [(200, 40, 0.8), (500, 50, 1.0), (100, 60, 0.0)])
def test_hit_rate_matches_ches_approximation(tmp_path, prompts, capacity, s):
    log = run(tmp_path, prompts, capacity, s)
    hits = (log.cached_tokens > 0)[2000:]  # after the cache has filled
    expected = che_hit_rate(prompts, capacity, s)
    sd = math.sqrt(expected * (1 - expected) / hits.size)
    # Che is an approximation (exact as N grows); allow its known error of about 1 % plus 4 sd.
    assert abs(hits.mean() - expected) < 0.01 + 4 * sd, (hits.mean(), expected)


def main() -> None:
    """The table VALIDATION.md quotes: python -m tests.validation.test_prefix_cache"""
    import tempfile
    from pathlib import Path

    print("| prompts N | cache C | Zipf s | Che hit rate | simulated (10,000 requests) |")
    print("|---|---|---|---|---|")
    for prompts, capacity, s in [(200, 40, 0.8), (500, 50, 1.0), (100, 60, 0.0)]:
        with tempfile.TemporaryDirectory() as tmp:
            log = run(Path(tmp), prompts, capacity, s)
        hits = (log.cached_tokens > 0)[2000:]
        print(f"| {prompts} | {capacity} | {s} | {che_hit_rate(prompts, capacity, s):.4f} | {hits.mean():.4f} |")


if __name__ == "__main__":
    main()
