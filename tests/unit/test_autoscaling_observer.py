"""The autoscaling observer fed hand-made records: replica-hours, cold starts, and the
requests that arrived during a scale-up."""
import numpy as np

from sim.metrics.autoscaling import AutoscalingObserver
from sim.metrics.inference import InferenceLayout
from sim.records import ColdStart, ProvisionChanged, ReplicasReady, RequestLog, RequestStatus

LAYOUT = InferenceLayout(regions=("r",), pool_region=np.array([0]), pool_slots=np.array([4]),
                         pool_gpus_per_slot=np.array([2.0]), workloads=("w",), slo_ms=(1000.0,))


def changed(t, ready, starting, cause):
    return ProvisionChanged(t, "r", "p", 0, ready, starting, ready + starting, cause)


def records():
    return [
        changed(0.0, 2, 0, "initial"),
        ColdStart(600.0, "r", "p", 0, 3, 100.0, 200.0, 250e9, 10.0, "r"),
        changed(600.0, 2, 3, "scale_up"),
        ReplicasReady(900.0, "r", "p", 0, 3, 600.0),
        changed(900.0, 5, 0, "ready"),
        changed(2700.0, 1, 0, "scale_down"),
    ]


def request_log(t_s, ok):
    n = len(t_s)
    zeros = np.zeros(n)
    return RequestLog(t_s=np.array(t_s), origin=np.zeros(n, dtype=np.int64), workload=np.zeros(n, dtype=np.int64),
                      pool=np.zeros(n, dtype=np.int16), rtt_ms=zeros, wait_s=zeros,
                      service_s=np.where(ok, 0.5, 2.0), status=np.full(n, RequestStatus.COMPLETED, dtype=np.int8),
                      retry_s=zeros, first_token_s=np.full(n, np.nan), tpot_s=np.full(n, np.nan),
                      prefix=np.full(n, -1, dtype=np.int32), cached_tokens=np.zeros(n, dtype=np.int32))


def observed(warmup_s=0.0):
    obs = AutoscalingObserver([("r/p", 8)], LAYOUT, warmup_s)
    for record in records():
        obs(record)
    # two requests during the scale-up (one misses its 1 s objective), three outside it
    obs(request_log([100.0, 650.0, 800.0, 900.0, 3000.0], np.array([True, True, False, True, True])))
    return obs


def test_replica_hours_count_warm_and_starting_replicas():
    section = observed().summary(3600.0)
    # warm: 2 x 900 s + 5 x 1800 s + 1 x 900 s = 11,700 s; starting: 3 x 300 s = 900 s
    assert section["warm_replica_hours"] == 11700 / 3600
    assert section["cold_start_replica_hours"] == 900 / 3600
    assert section["replica_hours"] == 12600 / 3600
    assert section["gpu_hours"] == 12600 / 3600 * 8
    assert section["by_pool"]["r/p"]["mean_replicas"] == 12600 / 3600


def test_cold_starts_and_their_measured_duration():
    section = observed().summary(3600.0)
    assert (section["cold_starts"], section["completed"], section["abandoned"]) == (3, 3, 0)
    assert (section["scale_ups"], section["scale_downs"]) == (1, 1)
    assert section["cold_start_s"]["mean"] == 300.0
    assert section["scale_up_time_s"] == 300.0


def test_requests_split_by_a_scale_up_in_progress():
    section = observed().summary(3600.0)
    during, outside = section["during_scale_up"], section["outside_scale_up"]
    assert (during["arrived"], outside["arrived"]) == (2, 3)  # [600, 900): 650 and 800
    assert during["slo_attainment"] == 0.5 and outside["slo_attainment"] == 1.0


def test_the_warm_up_is_left_out_of_the_hours():
    section = observed(warmup_s=1800.0).summary(3600.0)
    assert section["replica_hours"] == (5 * 900 + 1 * 900) / 3600
    assert section["scale_up_time_s"] == 0.0


def test_tables_list_every_change_and_cold_start():
    tables = observed().tables()
    columns, rows = tables["provisioning.csv"]
    assert columns[:2] == ("t_s", "region") and [(r.t_s, r.cause) for r in rows] == [
        (0.0, "initial"), (600.0, "scale_up"), (900.0, "ready"), (2700.0, "scale_down")]
    columns, rows = tables["cold_starts.csv"]
    assert "load_gbps" in columns and [(r.t_s, r.replicas, r.ready_s) for r in rows] == [(600.0, 3, 900.0)]
