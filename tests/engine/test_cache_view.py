"""What routing sees of the prefix caches is as stale as ``scheduler.sync_delay`` makes it:
a pool in another region is shown as of that region's last refresh, a pool in the
request's own region as it is now, whether or not the policy reads the load figures."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from sim.policies.routing import RoutingPolicy
from sim.policies.views import RoutingView
from sim.scenario import parse_scenario
from tests.traced import traced

SCENARIO = """\
name: cache-view
seed: 1
duration: 60s
regions:
  - {{name: u, lat: 0, lon: 0}}
  - {{name: a, lat: 0, lon: 1, pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8,
                                      serving: {{model: Llama-2-70B}}}}]}}
  - {{name: b, lat: 0, lon: 2, pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8,
                                      serving: {{model: Llama-2-70B}}}}]}}
links:
  - {{a: u, b: a, rtt_ms: 20}}
  - {{a: u, b: b, rtt_ms: 40}}
  - {{a: a, b: b, rtt_ms: 30}}
inference:
  - name: w
    origin: {{{origin}: 1}}
    arrival: {{process: trace, path: {trace}, loop: false}}
    service: {{dist: tokens}}
    shared_prefix: {{prompts: 1, tokens: {{mean: 1000, cv: 0}}}}
scheduler:
  routing: "tests.engine.test_cache_view:{policy}"
  sync_delay: {delay}
"""


class SeesCache(RoutingPolicy):
    """Sends every request to pool 0 (region a) and notes whether it was shown holding the prompt."""

    reads_tokens: ClassVar[bool] = True
    reads_cache: ClassVar[bool] = True
    seen: ClassVar[list[tuple[float, bool]]] = []

    def choose(self, view: RoutingView) -> int | None:
        SeesCache.seen.append((view.t_s, bool(view.prefix_cached[0])))
        return 0


class SeesCacheNoLoad(SeesCache):
    reads_load: ClassVar[bool] = False


def first_seen_cached(tmp_path, origin: str, delay: str, policy: str) -> float:
    trace = tmp_path / "every_second.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(f"{k},100,4\n" for k in range(50)))
    text = SCENARIO.format(origin=origin, trace=trace, delay=delay, policy=policy)
    SeesCache.seen = []
    log = traced(parse_scenario(text, "cache-view.yaml").scenario).log
    assert (log.status == 1).all() and log.cached_tokens[0] == 0 and (log.cached_tokens[1:] == 1000).all()
    assert [t for t, _ in SeesCache.seen] == [float(k) for k in range(50)]
    return min(t for t, cached in SeesCache.seen if cached)


@pytest.mark.parametrize("policy", ["SeesCache", "SeesCacheNoLoad"])
def test_a_remote_cache_is_seen_at_the_next_refresh(tmp_path, policy):
    # Region a refreshed at the first request (t = 0, nothing cached yet), then every 30 s:
    # the prompt cached at about t = 0.3 s is shown from t = 30 s on, not from t = 1 s.
    assert first_seen_cached(tmp_path, "u", "30s", policy) == 30.0
    assert first_seen_cached(tmp_path, "u", "7s", policy) == 7.0
    assert first_seen_cached(tmp_path, "u", "0s", policy) == 1.0


@pytest.mark.parametrize("policy", ["SeesCache", "SeesCacheNoLoad"])
def test_a_cache_in_the_users_region_is_seen_at_once(tmp_path, policy):
    assert first_seen_cached(tmp_path, "a", "30s", policy) == 1.0


RETRY = """\
name: retry-view
duration: 10m
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - {{name: even, gpu: H100, replicas: 2, gpus_per_replica: 8, serving: {{model: Llama-2-70B}}}}
      - {{name: odd, gpu: H100, replicas: 1, gpus_per_replica: 8, serving: {{model: Llama-2-70B}}}}
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: trace, path: {trace}, loop: false}}
    service: {{dist: tokens}}
scheduler:
  routing: "tests.engine.test_cache_view:ByParity"
failures:
  trace: {failures}
  inference: retry
  max_retries: 2
"""


class ByParity(RoutingPolicy):
    """A prompt of an even number of tokens goes to pool 0, an odd one to pool 1."""

    reads_tokens: ClassVar[bool] = True

    def choose(self, view: RoutingView) -> int | None:
        return view.input_tokens % 2


def test_a_retried_request_is_shown_with_its_own_tokens(tmp_path):
    # A request every 2 s (501 + k prompt tokens, answers of about a minute); one replica of
    # pool 0 fails at 101 s, just after an odd request (t = 100 s) was routed. The even
    # requests it held are routed again and must be seen as even, so go back to pool 0.
    requests = tmp_path / "requests.csv"
    requests.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                        + "".join(f"{2 * k},{501 + k},2000\n" for k in range(150)))
    failures = tmp_path / "failures.csv"
    failures.write_text("time_s,region,pool,replicas,duration_s\n101,a,even,1,60\n")
    run = traced(parse_scenario(RETRY.format(trace=requests, failures=failures), "retry.yaml").scenario)
    log = run.log
    assert run.retries > 5
    tokens = 501 + np.arange(150)  # the log is in arrival order, the trace's
    assert (log.t_s == 2.0 * np.arange(150)).all()
    assert (log.pool == tokens % 2).all()


BURST = """\
name: backlog
duration: 200s
regions:
  - name: a
    lat: 0
    lon: 0
    intra_rtt_ms: 0
    pools: [{{name: p, gpu: H100, replicas: 1, gpus_per_replica: 8, serving: {{model: Llama-2-70B}}}},
            {{name: slots, gpu: H100, replicas: 1, gpus_per_replica: 8, slots_per_replica: 4}}]
inference:
  - name: w
    origin: {{a: 1}}
    arrival: {{process: trace, path: {trace}, loop: false}}
    service: {{dist: tokens}}
scheduler:
  routing: "tests.engine.test_cache_view:SeesBacklog"
"""


class SeesBacklog(RoutingPolicy):
    """Sends every request to pool 0 and notes the prefill backlogs it was shown."""

    reads_backlog: ClassVar[bool] = True
    seen: ClassVar[list[tuple[float, float, float]]] = []

    def choose(self, view: RoutingView) -> int | None:
        SeesBacklog.seen.append((view.t_s, float(view.prefill_backlog[0]), float(view.prefill_backlog[1])))
        return 0


def test_the_prefill_backlog_counts_the_prompt_tokens_ahead(tmp_path):
    # Ten 3,000-token prompts at the same instant, then one long after they are all done:
    # the k-th of the burst finds the k before it still to prefill (none can finish within
    # an instant), the last finds nothing. A slot pool has no backlog to show (NaN).
    trace = tmp_path / "burst.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "10,3000,5\n" * 10 + "150,3000,5\n")
    SeesBacklog.seen = []
    log = traced(parse_scenario(BURST.format(trace=trace), "burst.yaml").scenario).log
    assert (log.status == 1).all()
    seen = SeesBacklog.seen
    # (The trace's first timestamp is the run's start.)
    assert [(t, backlog) for t, backlog, _ in seen] == [(0.0, 3000.0 * k) for k in range(10)] + [(140.0, 0.0)]
    assert all(np.isnan(slots) for _, _, slots in seen)
