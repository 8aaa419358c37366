"""A cold start takes provisioning + weight bytes / load bandwidth, to the second.

Hand calculations (docs/serving_model.md, "Autoscaling and cold starts"):

- 140 GB (10^9 bytes) at 10 Gbit/s: 140e9 x 8 / 10e9 = 112 s; with 45 s provisioning a
  replica asked for at t = 0 serves from t = 157 s;
- Llama-2-70B from the catalogue: 68,976,648,192 parameters x 2 bytes = 137,953,296,384
  bytes; at 10 Gbit/s that is 110.3626371072 s;
- over the WAN the load runs at min(load_gbps, the path's bottleneck link): 140 GB over a
  4 Gbit/s link takes 280 s even with load_gbps 10.
"""
from sim.records import CapacityChanged, ColdStart, ReplicasReady
from sim.scenario import parse_scenario
from tests.traced import traced

# The allocation_model policy without a load model asks for every replica (planned = max),
# so the first tick, at t = 0, scales the pool from `initial` to `max`.
SLOTS = """\
name: cold
duration: 10m
regions:
  - name: a
    lat: 0
    lon: 0
    pools:
      - name: p
        gpu: H100
        replicas: 3
        autoscale: {min: 1, max: 3, provisioning_s: 45, load_gbps: 10, weights_gb: 140}
inference:
  - name: api
    origin: {a: 1}
    arrival: {process: poisson, rate_per_s: 0.5}
    service: {dist: constant, value_s: 1}
scheduler:
  autoscaling: {policy: allocation_model, interval: 1h}
"""


def _run(text, overrides=()):
    return traced(parse_scenario(text, "cold.yaml", overrides).scenario)


def test_a_cold_start_takes_provisioning_plus_weights_over_bandwidth():
    run = _run(SLOTS)
    (start,) = run.of(ColdStart)
    (ready,) = run.of(ReplicasReady)
    assert (start.t_s, start.replicas, start.provisioning_s, start.weights_bytes, start.load_gbps) == (
        0.0, 2, 45.0, 140e9, 10.0)
    assert start.load_s == 112.0
    assert (ready.t_s, ready.started_s, ready.replicas) == (157.0, 0.0, 2)
    # The pool serves one replica (8 GPUs) until then, three from t = 157 s.
    pool = [(r.t_s, r.active_gpus) for r in run.of(CapacityChanged)]
    assert pool[-1] == (157.0, 24)
    assert all(gpus == 8 for t, gpus in pool[1:-1]) and all(t < 157.0 for t, _ in pool[:-1])


def test_no_request_is_served_by_a_starting_replica():
    run = _run(SLOTS, ["inference[0].arrival.rate_per_s=5"])
    log = run.log
    start = log.t_s + log.rtt_ms / 2000.0 + log.wait_s
    # Before t = 157 s one slot serves: service of 1 s each, so at most one in service.
    early = start[start < 157.0]
    assert len(early) and (early[1:] - early[:-1] >= 1.0 - 1e-9).all()


def test_the_catalogue_model_size_sets_the_load_time():
    text = SLOTS.replace("weights_gb: 140}", "}").replace(
        "        autoscale:", "        gpus_per_replica: 8\n        serving: {model: Llama-2-70B}\n        autoscale:")
    text = text.replace("service: {dist: constant, value_s: 1}", "service: {dist: tokens, input_tokens: {mean: 100}, "
                        "output_tokens: {mean: 10}}")
    run = _run(text)
    (start,) = run.of(ColdStart)
    (ready,) = run.of(ReplicasReady)
    assert start.weights_bytes == 68_976_648_192 * 2
    assert abs(start.load_s - 110.3626371072) < 1e-9
    assert abs(ready.t_s - (45.0 + 110.3626371072)) < 1e-9


WAN = """\
name: wan
duration: 10m
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 1, serving: {model: Llama-2-70B}}]}
  - {name: far, lat: 0, lon: 60, pools: [{name: p, gpu: H100, replicas: 1, serving: {model: Llama-2-70B}}]}
  - name: b
    lat: 0
    lon: 5
    pools:
      - name: p
        gpu: H100
        replicas: 2
        serving: {model: Llama-2-70B}
        autoscale: {min: 1, max: 2, provisioning_s: 20, load_gbps: 10, weights_gb: 140, weights_from: nearest}
links:
  - {a: a, b: b, bandwidth_gbps: 4}
  - {a: far, b: b, bandwidth_gbps: 400}
inference:
  - name: chat
    origin: {b: 1}
    arrival: {process: poisson, rate_per_s: 0.2}
    service: {dist: tokens, input_tokens: {mean: 100}, output_tokens: {mean: 10}}
scheduler:
  autoscaling: {policy: allocation_model, interval: 1h}
"""


def test_weights_over_the_wan_come_from_the_nearest_holder_at_the_path_bandwidth():
    run = _run(WAN)
    (start,) = run.of(ColdStart)
    (ready,) = run.of(ReplicasReady)
    # a is nearer than far; its 4 Gbit/s link caps the 10 Gbit/s load: 140e9 x 8 / 4e9 = 280 s.
    assert (start.source, start.load_gbps, start.load_s) == ("a", 4.0, 280.0)
    assert ready.t_s == 300.0


def test_a_wider_path_leaves_the_configured_bandwidth():
    run = _run(WAN, ["links[0].bandwidth_gbps=40"])
    (start,) = run.of(ColdStart)
    assert (start.source, start.load_gbps, start.load_s) == ("a", 10.0, 112.0)
