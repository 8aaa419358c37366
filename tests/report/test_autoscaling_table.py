"""The report's autoscaling table reads the summary section, and only when it is there."""
from sim.report.kpis import run_tables

SECTION = {"replica_hours": 18.2, "cold_start_replica_hours": 1.0, "gpu_hours": 36.4, "cold_starts": 16,
           "cold_start_s": {"mean": 225.5}, "scale_up_time_s": 460.7,
           "during_scale_up": {"arrived": 5785, "slo_attainment": 0.3025},
           "outside_scale_up": {"arrived": 33993, "slo_attainment": 0.9993}}


def test_the_autoscaling_table():
    (table,) = [t for t in run_tables({"autoscaling": SECTION}) if t.title == "Autoscaling"]
    rows = dict(table.rows)
    assert rows["cold starts"] == "16" and rows["SLO attainment during scale-up"] == "30.25 %"
    assert rows["requests arrived during scale-up"] == "5,785"


def test_no_table_without_autoscaling():
    assert not [t for t in run_tables({"inference": {"arrived": 3}}) if t.title == "Autoscaling"]
