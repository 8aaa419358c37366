"""The capacity observer fed a hand-made event stream, no engine."""
import pytest

from sim.metrics import CapacityObserver, bucket_edges, timeseries_rows
from sim.records import CapacityChanged, LoadSample


def test_observer_summary_from_hand_made_records():
    obs = CapacityObserver({"a": 16, "b": 8})
    for record in [
        LoadSample(0, 10.0, 0.5, 8.0, 0.0),
        CapacityChanged(0, "a", "p", 0.75, 8, 6.0),
        CapacityChanged(0, "b", "q", 0.25, 8, 2.0),
        LoadSample(50, 30.0, 1.5, 24.0, 0.0),
        CapacityChanged(50, "a", "p", 0.75, 16, 16.0),
        CapacityChanged(50, "b", "q", 0.25, 8, 8.0),
    ]:
        obs(record)
    summary = obs.summary(0, 100)
    assert summary["load"] == {"mean": pytest.approx(20.0), "max": 30.0}
    assert summary["allocation"]["by_region"] == pytest.approx({"a": 0.75, "b": 0.25})
    # a: busy (6 * 50 + 16 * 50) / 100 = 11 of 16; b: 5 of 8; all: 16 of 24
    assert summary["utilization"]["by_region"] == pytest.approx({"a": 11 / 16, "b": 5 / 8})
    assert summary["utilization"]["mean"] == pytest.approx(16 / 24)
    # warm-up excluded: only [50, 100)
    assert obs.summary(50, 100)["load"]["mean"] == pytest.approx(30.0)


def test_timeseries_rows_per_bucket_and_region():
    obs = CapacityObserver({"a": 16})
    obs(LoadSample(0, 1.0, 0.1, 1.0, 0.0))
    obs(CapacityChanged(0, "a", "p", 1.0, 16, 4.0))
    obs(CapacityChanged(30, "a", "p", 1.0, 16, 12.0))
    edges = bucket_edges(0, 60, 20)
    rows = timeseries_rows(edges, obs.columns(edges))
    assert [(r["t_start_s"], r["busy_gpus"]) for r in rows] == [(0, 4.0), (20, 8.0), (40, 12.0)]
    assert rows[1]["utilization"] == pytest.approx(0.5)


def test_request_columns_join_by_region_and_replace_the_scheduler_busy_gpus():
    obs = CapacityObserver({"a": 16, "b": 8})
    obs(CapacityChanged(0, "a", "p", 0.5, 16, 0.0))
    obs(CapacityChanged(0, "b", "q", 0.5, 8, 0.0))
    edges = bucket_edges(0, 20, 10)
    served = {"b": {"busy_gpus": [2.0, 6.0]}, "a": {"busy_gpus": [8.0, 4.0]}}  # given in another order
    rows = timeseries_rows(edges, obs.columns(edges), served)
    assert [(r["t_start_s"], r["region"], r["busy_gpus"], r["utilization"]) for r in rows] == [
        (0, "a", 8.0, 0.5), (0, "b", 2.0, 0.25), (10, "a", 4.0, 0.25), (10, "b", 6.0, 0.75)]
