"""A failed replica of a slot pool loses exactly the requests it held.

The reference below re-seats the requests of the request log by the rule of
docs/failures.md (a request starts on the active replica with the fewest requests, the
lowest index on a tie), independently of the engine, and the requests a failure lost must
be exactly those seated on one replica.
"""
import math

import numpy as np

from sim.records import RequestsDisplaced, RequestStatus
from tests.traced import traced_text

POOL = """\
name: seats
seed: {seed}
duration: 1h
regions:
  - {{name: a, lat: 0, lon: 0, pools: [{{name: p, gpu: H100, replicas: 3, gpus_per_replica: 8, slots_per_replica: 2}}]}}
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: poisson, rate_per_s: 0.012}}
    service: {{dist: constant, value_s: 300}}
failures:
  trace: {trace}
  inference: drop
"""


def seats_at(log, t_fail: float, replicas: int) -> list[set[int]]:
    """Requests in service at ``t_fail`` on each replica, seated least-loaded first."""
    start = log.pool_arrival_s + log.wait_s
    started = np.flatnonzero((log.pool == 0) & (start <= t_fail) & ~np.isnan(log.wait_s))
    ends = {int(j): (start[j] + log.service_s[j] if log.status[j] == RequestStatus.COMPLETED else math.inf)
            for j in started}
    counts, seat, holding = [0] * replicas, {}, [set() for _ in range(replicas)]
    for j in sorted(started, key=lambda j: (start[j], j)):
        for i in [i for i in seat if ends[i] <= start[j]]:
            counts[seat[i]] -= 1
            holding[seat.pop(i)].discard(i)
        k = counts.index(min(counts))
        counts[k] += 1
        seat[int(j)] = k
        holding[k].add(int(j))
    for i in [i for i in seat if ends[i] <= t_fail]:
        holding[seat.pop(i)].discard(i)
    return holding


def test_a_failed_replica_loses_exactly_its_own_requests(tmp_path):
    # One replica of three fails at 30 min; over eight seeds the pool holds 1 to 6
    # requests then. The average rule this replaces lost floor(n / 3 + u) of the most
    # recently started, whichever replica held them.
    trace = tmp_path / "fail.csv"
    trace.write_text("time_s,region,pool,replicas,duration_s\n1800,a,p,1,600\n")
    sizes = []
    for seed in range(1, 9):
        run = traced_text(POOL.format(seed=seed, trace=trace))
        log = run.log
        lost = {int(j) for j in np.flatnonzero(log.status == RequestStatus.FAILED)}
        groups = seats_at(log, 1800.0, 3)
        assert lost in groups, (seed, lost, groups)
        assert run.lost == len(lost)
        sizes.append(len(lost))
    assert len(set(sizes)) >= 2 and max(sizes) == 2  # replicas held 0, 1 or 2 requests


def test_a_replica_failure_keeps_the_other_replicas_requests_running(tmp_path):
    # Three failures over the day on a busy pool: every request ends completed or failed,
    # and every failure lost no more than the slots of one replica.
    trace = tmp_path / "fail.csv"
    trace.write_text("time_s,region,pool,replicas,duration_s\n900,a,p,1,300\n1500,a,p,1,300\n2400,a,p,1,300\n")
    text = POOL.format(seed=3, trace=trace).replace("rate_per_s: 0.012", "rate_per_s: 0.05")
    run = traced_text(text)
    displaced = run.of(RequestsDisplaced)
    assert len(displaced) == 3 and all(1 <= d.lost <= 2 for d in displaced)
    status = run.log.status
    assert ((status == RequestStatus.COMPLETED) | (status == RequestStatus.FAILED)
            | (status == RequestStatus.IN_FLIGHT)).all()
