"""The rules that make run charts readable, tested on small hand-made tables (no pixels)."""
import numpy as np

from sim.report.charts import (
    RunTable,
    align_ylabels,
    constant_capacity,
    event_spans,
    inference_figure,
    overview_figure,
    proportional,
    seconds_if_long,
)
from sim.report.style import OBJECTIVE, PALETTE, apply_style, pyplot, series_style
from sim.report.training import gpu_hours_unit, training_figure


def table(**columns_by_region):
    """A RunTable of four one-hour buckets; each region's columns default to a flat fleet."""
    n = 4
    base = {"t_start_s": np.arange(n) * 3600.0, "t_end_s": (np.arange(n) + 1) * 3600.0,
            "load": np.full(n, np.nan), "resources": np.full(n, np.nan), "share": np.full(n, 0.5),
            "total_gpus": np.full(n, 16.0), "active_gpus": np.full(n, 16.0), "utilization": np.full(n, 0.4),
            "arrivals": np.full(n, 3600.0), "queue_len": np.zeros(n), "latency_p99_ms": np.full(n, 800.0)}
    return RunTable(tuple(columns_by_region), {r: {**base, **{k: np.asarray(v, dtype=float) for k, v in cols.items()}}
                                               for r, cols in columns_by_region.items()})


def test_every_region_keeps_one_style_and_the_first_32_differ():
    styles = [tuple(series_style(k).values()) for k in range(32)]
    assert len(set(styles)) == 32
    assert series_style(0) == {"color": PALETTE[0], "linestyle": "-"}
    assert series_style(8)["color"] == PALETTE[0] and series_style(8)["linestyle"] != "-"
    assert OBJECTIVE["color"] not in PALETTE  # an SLO line never looks like a region


def test_allocation_proportional_to_load_is_one_line_on_two_scales():
    load = np.array([100.0, 150.0, 0.0, np.nan])
    assert proportional(load, load * 0.005) == 0.005
    assert proportional(load, np.minimum(load * 0.01, 1.2)) is None  # capped: two lines
    assert proportional(np.full(3, np.nan), np.ones(3)) is None


def test_capacity_panel_dropped_only_when_every_region_is_flat():
    assert constant_capacity(table(a={}, b={"active_gpus": [16000, 15990, 16000, 15995]}))
    assert not constant_capacity(table(a={}, b={"active_gpus": [4, 20, 10, 4]}))
    apply_style()
    flat = overview_figure(table(a={}, b={}))
    varied = overview_figure(table(a={}, b={"active_gpus": [4, 20, 10, 4]}))
    assert len(flat.axes) == 1 and len(varied.axes) == 2
    assert [t.get_text() for t in flat.axes[0].get_legend().get_texts()] == ["a (16 GPUs)", "b (16 GPUs)"]
    pyplot().close("all")


def test_latencies_switch_to_seconds_at_ten_thousand_ms():
    assert seconds_if_long([np.array([900.0, np.nan])]) == (1.0, "ms")
    assert seconds_if_long([np.array([np.nan]), np.array([12_000.0])]) == (0.001, "s")
    apply_style()
    fig = inference_figure(table(a={"latency_p99_ms": [30_000, 45_000, 200_000, 40_000]}))
    assert fig.axes[-1].get_ylabel() == "p99 latency (s)"
    assert fig.axes[-1].get_ylim()[1] < 1000
    pyplot().close(fig)


def test_a_panel_of_zeros_is_left_out_and_many_regions_share_one_legend():
    apply_style()
    fig = inference_figure(table(**{f"r{k}": {} for k in range(8)}))  # no queue ever formed
    assert [ax.get_title() for ax in fig.axes] == ["Requests reaching each region (mean rate per bucket)",
                                                   "p99 latency of requests completing"]
    assert [ax.get_legend() is not None for ax in fig.axes] == [True, False]
    few = inference_figure(table(a={"queue_len": [0, 1, 2, 0]}, b={}))
    assert [ax.get_legend() is not None for ax in few.axes] == [True, True, True]
    pyplot().close("all")


def test_y_labels_clear_the_widest_tick_label():
    apply_style()
    fig, axes = pyplot().subplots(2, 1)
    axes[0].set_ylim(0, 10)
    axes[1].set_ylim(0, 200_000)
    align_ylabels(axes)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        ticks = max(t.get_window_extent(renderer).width for t in ax.get_yticklabels())
        label = ax.yaxis.label.get_window_extent(renderer)
        assert label.x1 < ax.get_window_extent(renderer).x0 - ticks  # left of every tick label
    pyplot().close(fig)


def test_queue_rounding_below_zero_still_starts_the_axis_at_zero():
    apply_style()
    fig = inference_figure(table(a={"queue_len": [0.0, -4e-9, 20.0, 3.0]}))
    assert fig.axes[1].get_ylim()[0] == 0
    pyplot().close(fig)


def test_events_are_named_in_words(tmp_path):
    (tmp_path / "failures.csv").write_text(
        "kind,region,pool,replicas,start_s,end_s,hit,domain\n"
        "partition,southeastasia|japaneast,*,0,36000,43200,partition,\n"
        "region,eastus,*,0,3600,7200,region,\n"
        "node,eastus,h100,1,0,60,up,\n")
    assert event_spans(tmp_path) == [("partition southeastasia - japaneast", 10.0, 12.0), ("outage eastus", 1.0, 2.0)]


def test_gpu_hours_are_scaled_instead_of_an_offset():
    assert gpu_hours_unit(21_233_650.8) == (1e6, "GPU-hours held (millions)")
    assert gpu_hours_unit(45_000) == (1e3, "GPU-hours held (thousands)")
    assert gpu_hours_unit(900) == (1.0, "GPU-hours held")


def test_training_cdfs_need_two_jobs():
    one = [{"workload": "pretrain", "status": "running", "arrival_s": "0", "start_s": "0", "end_s": "",
            "wait_s": "0", "held_gpu_h": "2e7", "useful_gpu_h": "1.9e7", "lost_gpu_h": "6e5"}]
    two = one + [{**one[0], "status": "completed", "end_s": "7200", "start_s": "60", "wait_s": "60"}]
    apply_style()
    titles = [[ax.get_title() for ax in training_figure(rows).axes] for rows in (one, two)]
    assert titles == [["GPU-hours held by training"],
                      ["Queueing delay (jobs that started)", "GPU-hours held by training"]]
    pyplot().close("all")


def test_shares_are_charted_in_percent():
    from sim.report.labels import metric_axis

    assert metric_axis("inference.slo_attainment") == (100.0, "SLO attainment (%)")
    assert metric_axis("utilization.mean") == (100.0, "utilisation, mean (%)")
    assert metric_axis("inference.ttft_ms.p99") == (1.0, "time to first token, p99 (ms)")
    assert metric_axis("inference.ttft_ms.p99", top=9_999) == (1.0, "time to first token, p99 (ms)")
    assert metric_axis("inference.latency_ms.p99", top=125_000) == (0.001, "end-to-end latency, p99 (s)")
    assert metric_axis("energy.kwh", top=125_000) == (1.0, "energy (kWh)")


def test_a_plan_is_titled_in_words():
    from sim.report.plan import plot_plan

    report = {"path": "inference.slo_attainment", "op": ">=", "threshold": 0.95, "rule": "all", "seeds": [1, 2],
              "vary": "regions.eu-west.pools.a100.replicas", "target": "inference.slo_attainment>=0.95",
              "answer": 8, "status": "met",
              "points": [{"value": v, "mean": m, "ci": [m - 0.01, m + 0.01], "values": {"1": m, "2": m}}
                         for v, m in ((7, 0.9), (8, 0.96))]}
    apply_style()
    fig, ax = pyplot().subplots()
    plot_plan(ax, report)
    assert ax.get_title() == "Least replicas of eu-west/a100 with SLO attainment (%) ≥ 95 on every seed: 8"
    assert ax.get_ylabel() == "SLO attainment (%)"
    assert "target ≥ 95" in [t.get_text() for t in ax.get_legend().get_texts()]
    pyplot().close(fig)


def test_short_runs_get_minute_ticks():
    from sim.report.charts import clock_axis

    apply_style()
    labels = {}
    for span in (0.5, 1.0, 3.0):
        fig, ax = pyplot().subplots()
        ax.set_xlim(0, span)
        clock_axis(ax, span_h=span)
        fig.canvas.draw()
        labels[span] = [t.get_text() for t in ax.get_xticklabels() if 0 <= t.get_position()[0] <= span]
        pyplot().close(fig)
    assert labels[0.5] == ["00:00", "00:05", "00:10", "00:15", "00:20", "00:25", "00:30"]
    assert labels[1.0][:3] == ["00:00", "00:10", "00:20"]
    assert labels[3.0][:3] == ["00:00", "00:30", "01:00"]


def test_an_origin_keeps_its_regions_style_and_users_only_origins_come_after():
    from sim.report.charts import region_styles

    styles = region_styles(["brazilsouth", "westeurope"], ["eastus", "westeurope", "southeastasia", "westus2"])
    assert styles == {"westeurope": series_style(1), "brazilsouth": series_style(4)}


def test_an_uncertainty_study_is_reported_with_bands_and_target_odds(tmp_path):
    import json

    from sim.report import build_report
    from sim.report.files import folder_kind

    rates = [6.1, 6.5, 7.0, 7.5]
    report = {"scenario": "study.yaml", "samples": 4, "seeds": [1], "failed_runs": [],
              "inputs": [{"path": "inference.0.arrival.rate_per_s", "dist": "uniform",
                          "params": {"low": 6.0, "high": 7.6}}],
              "kpis": {"inference.wait_ms.mean": {"n": 4, "median": 400.0, "band_50": [250.0, 700.0],
                                                  "band_90": [200.0, 900.0],
                                                  "sensitivity": {"inference.0.arrival.rate_per_s": 1.0}},
                       "inference.dropped": {"n": 4, "median": 0, "band_50": [0, 0], "band_90": [0, 0],
                                             "sensitivity": {}}},
              "targets": [{"target": "inference.wait_ms.mean<=500", "probability": 0.5, "ci": [0.15, 0.85], "n": 4}],
              "per_sample": {"inference.wait_ms.mean": [200.0, 300.0, 600.0, 900.0], "inference.dropped": [0, 0, 0, 0]}}
    (tmp_path / "uncertainty_report.json").write_text(json.dumps(report))
    (tmp_path / "samples.csv").write_text("sample,inference.0.arrival.rate_per_s,inference.wait_ms.mean\n" + "".join(
        f"{k},{r},{w}\n" for k, (r, w) in enumerate(zip(rates, report["per_sample"]["inference.wait_ms.mean"],
                                                         strict=True))))
    assert folder_kind(tmp_path) == "uncertainty"
    built = build_report(tmp_path)
    assert sorted(r.chart.name for r in built.charts) == ["targets", "uncertainty"]
    page = built.markdown.read_text()
    assert "| inference.wait_ms.mean | 400 | [250, 700] | [200, 900] | inference.0.arrival.rate_per_s (+1.00) |" in page
    assert "| inference.wait_ms.mean&lt;=500 | 50.00 % | [15.00 %, 85.00 %] | 4 |" in page
    from sim.report.uncertainty import varying_kpis

    assert varying_kpis(report) == ["inference.wait_ms.mean"]  # no drops in any sample: no panel


def test_the_uncertainty_command_draws_its_charts(tmp_path):
    from tests.conftest import SCENARIOS, run_cli

    study = tmp_path / "study.yaml"
    study.write_text((SCENARIOS / "validation" / "mmc.yaml").read_text().replace(
        "rate_per_s: 7.2", "rate_per_s: {dist: uniform, low: 6.0, high: 7.6}"))
    result = run_cli("uncertainty", str(study), "--samples", "3", "--set", "duration=20m", "--set", "warmup=5m",
                     "--target", "inference.wait_ms.mean<=500", "--out", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "out" / "charts").iterdir()) == ["targets.png", "uncertainty.png"]


def test_a_sweep_charts_only_the_metrics_that_vary():
    from sim.report.compare import varying_metrics

    rows = [{"m": "0", "u": "0.99993", "lat": "14000", "sim_time_s": "3600"},
            {"m": "0", "u": "0.99982", "lat": "9000", "sim_time_s": "3600"}]
    assert varying_metrics(rows, ["m", "u", "lat", "sim_time_s"]) == ["lat"]
    assert varying_metrics(rows, ["m", "sim_time_s"]) == ["m", "sim_time_s"]  # none varies: all of them
