"""The request loop's shortcuts give the request log that asking the policy for every
request gives.

- ``latency_aware`` (``nearest_when_free``): while the nearest available pool has a free
  slot the loop takes it without calling the policy;
- token service times known before routing (one GPU type serves): computed all at once
  instead of per request at its pool.

Each is compared with the same run without it, column by column, on a small world whose
near pools fill up (so the policy is asked often too), with node failures, retries and a
region outage (capacity changes while requests queue and travel).
"""
import numpy as np
import pytest

from sim.engine.inference import InferenceEngine
from sim.policies import LatencyAware
from sim.policies.routing import by_distance
from tests.traced import traced_text

WORLD = """\
name: shortcuts
seed: 3
duration: 2h
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: 3, slots_per_replica: 4}}]}}
  - {{name: b, lat: 0, lon: 20, pools: [{{name: p, gpu: {gpu_b}, replicas: 3, slots_per_replica: 4}}]}}
  - {{name: c, lat: 30, lon: 10, pools: [{{name: p, gpu: H100, replicas: 2, slots_per_replica: 4}}]}}
  - {{name: u, lat: 10, lon: 10}}
inference:
  - name: chat
    origin: {{a: 2, b: 1, u: 1}}
    arrival: {{process: poisson, rate_per_s: 3, profile: {{kind: diurnal, mean: 1.0, amplitude: 0.8, peak_hour: 1}}}}
    service: {{dist: tokens, input_tokens: {{mean: 800, cv: 1.0}}, output_tokens: {{mean: 60, cv: 1.0}}}}
    timeout_ms: 20000
scheduler:
  routing: latency_aware
failures:
  nodes: [{{mttf: 2h}}]
  outages: [{{region: a, at: 40m, duration: 20m}}]
  inference: retry
  max_retries: 2
"""


def columns(log) -> dict[str, bytes]:
    return {f: np.ascontiguousarray(getattr(log, f)).tobytes() for f in log.__dataclass_fields__}


def counted_choices(monkeypatch) -> list[int]:
    calls = [0]
    choose = LatencyAware.choose

    def counting(self, view):
        calls[0] += 1
        return choose(self, view)
    monkeypatch.setattr(LatencyAware, "choose", counting)
    return calls


@pytest.mark.parametrize("gpu_b", ["H100", "A100"])  # one GPU type (times known up front), or two
def test_latency_aware_skips_the_call_only_where_the_answer_is_the_nearest_free_pool(gpu_b, monkeypatch):
    text = WORLD.format(gpu_b=gpu_b)
    calls = counted_choices(monkeypatch)
    fast = traced_text(text)
    asked = calls[0]
    monkeypatch.setattr(LatencyAware, "nearest_when_free", False)
    calls[0] = 0
    slow = traced_text(text)
    log = slow.log
    assert columns(fast.log) == columns(log)
    # Both paths ran: the policy was asked for some requests (the nearest pool full), not
    # for most; and the world was busy enough to queue, time out, retry and lose requests.
    assert 0 < asked < 0.5 * calls[0]
    assert calls[0] >= len(log.t_s)
    assert (log.wait_s > 0).sum() > 100 and slow.retries > 0
    assert len(set(log.pool[log.origin == 0].tolist())) == 3  # origin a's requests went everywhere


class Farthest(LatencyAware):
    """latency_aware's class with another answer: the farthest available pool."""

    def choose(self, view):
        pools = by_distance(view, view.origin)
        return int(pools[-1]) if len(pools) else None


def test_a_subclass_that_changes_the_answer_is_asked_for_every_request():
    # nearest_when_free is read on the policy's own class: a subclass that does not say it
    # again is asked, so no request goes to its nearest pool while a farther one is up.
    run = traced_text(WORLD.format(gpu_b="H100"), [f"scheduler.routing={__name__}:Farthest"])
    log = run.log
    from_a = log.pool[(log.origin == 0) & (log.pool >= 0)]
    assert len(from_a) > 1000 and not (from_a == 0).any()


def test_token_times_computed_up_front_match_those_computed_per_request(monkeypatch):
    text = WORLD.format(gpu_b="H100")
    fast = traced_text(text)
    # The per-request path: the loop computes each time at the pool the request was sent to.
    monkeypatch.setattr(InferenceEngine, "_pool_free_services", lambda self: False)
    slow = traced_text(text)
    assert columns(fast.log) == columns(slow.log)
    assert (~np.isnan(slow.log.service_s)).sum() > 1000 and slow.retries > 0
