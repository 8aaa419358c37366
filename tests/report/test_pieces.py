"""The report's pieces on hand-made data: great circles, SLO series, number formats, escaping."""
import numpy as np
import pytest

from sim.errors import UsageError
from sim.report import parse_formats
from sim.report.charts import slo_series
from sim.report.document import Document, Figure, Section, Table, to_html, to_markdown
from sim.report.kpis import fmt, reproduce_command
from sim.report.worldmap import LAND, great_circle, map_extent
from sim.world.geo import great_circle_km


def test_great_circle_runs_from_one_end_to_the_other_on_the_sphere():
    lat, lon = great_circle(40.0, -75.0, 50.0, 8.0, n=101)
    assert (lat[0], lon[0]) == pytest.approx((40.0, -75.0)) and (lat[-1], lon[-1]) == pytest.approx((50.0, 8.0))
    steps = [great_circle_km(lat[i], lon[i], lat[i + 1], lon[i + 1]) for i in range(100)]
    assert sum(steps) == pytest.approx(great_circle_km(40.0, -75.0, 50.0, 8.0), rel=1e-6)
    assert max(steps) == pytest.approx(min(steps), rel=1e-6)  # slerp: even spacing
    assert lat.max() > 50.0  # the arc bows towards the pole, unlike a straight line in lon/lat


def test_great_circle_along_the_equator_and_across_the_antimeridian():
    lat, lon = great_circle(0.0, 0.0, 0.0, 90.0, n=3)
    assert lat == pytest.approx([0, 0, 0], abs=1e-9) and lon == pytest.approx([0, 45, 90])
    lat, lon = great_circle(35.0, 140.0, 37.0, -122.0, n=50)  # Tokyo -> California, over the Pacific
    assert np.isnan(lon).sum() == 1 and np.isnan(lat).sum() == 1
    split = int(np.flatnonzero(np.isnan(lon))[0])
    assert lon[split - 1] > 170 and lon[split + 1] < -170


def test_slo_series_follows_the_summary_rule_per_bucket():
    # Bucket 0: two completed (one within 1 s), one timed out; bucket 1: one completed in time,
    # one in flight (left out); workload 1 has no SLO and never counts.
    requests = {
        "t_s": np.array([1.0, 2.0, 3.0, 11.0, 12.0, 4.0]),
        "origin": np.array([0, 1, 0, 1, 1, 0]),
        "workload": np.array([0, 0, 0, 0, 0, 1]),
        "rtt_ms": np.array([100.0, 100.0, 100.0, 50.0, 50.0, 0.0]),
        "wait_s": np.array([0.0, 2.0, 5.0, 0.0, np.nan, 0.0]),
        "service_s": np.array([0.5, 0.5, np.nan, 0.5, np.nan, 9.0]),
        "status": np.array([1, 1, 3, 1, 4, 1], dtype=np.int8),
    }
    e2e_only = [(None, None, 1000.0), (None, None, None)]
    series = slo_series(requests, np.array([0.0, 10.0, 20.0]), e2e_only, ["a", "b"])
    assert series["*"] == pytest.approx([1 / 3, 1.0])
    assert series["a"][0] == pytest.approx(0.5) and np.isnan(series["a"][1])
    assert series["b"] == pytest.approx([0.0, 1.0])
    assert slo_series(requests, np.array([0.0, 20.0]), [(None, None, None)] * 2, ["a", "b"]) == {}
    # A TTFT objective too: request 0's first token came after 150 ms (100 ms RTT + 50 ms),
    # request 3's after 850 ms; with ttft_ms 500 request 3 misses although it met 1000 ms.
    requests["first_token_s"] = np.array([0.05, 0.1, np.nan, 0.8, np.nan, np.nan])
    both = slo_series(requests, np.array([0.0, 10.0, 20.0]), [(500.0, None, 1000.0), (None, None, None)], ["a", "b"])
    assert both["*"] == pytest.approx([1 / 3, 0.0])


def test_number_formats():
    assert [fmt(1234567, "int"), fmt(0.93098, "pct"), fmt(8e12, "bytes"), fmt(5e9, "bytes")] == [
        "1,234,567", "93.10 %", "8 TB", "5 GB"]
    assert [fmt(6285.58), fmt(30124.99), fmt(0.0051909), fmt(None), fmt(float("nan"))] == [
        "6,286", "30,125", "0.005191", "n/a", "n/a"]


def test_reproduce_command_quotes_for_a_shell():
    assert reproduce_command(["simulate.py"]) == "python simulate.py"
    assert reproduce_command(["simulate.py", "run", "my file.yaml", "--set", "a=b c"]) == \
        "python simulate.py run 'my file.yaml' --set 'a=b c'"


def test_every_text_is_escaped_in_html(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG")
    evil = '<script>alert("x")</script> & co'
    doc = Document(evil, evil, (Section(evil, text=evil, code=evil, tables=(Table(evil, (evil,), ((evil,),)),),
                                        figures=(Figure(evil, evil, image, "x.png"),), notes=(evil,)),))
    page = to_html(doc)
    assert "<script>" not in page and "alert(&quot;x&quot;)" in page
    # title, h1, subtitle, h2, text, code, caption, th, td, alt, figure title and caption, note
    assert page.count("&lt;script&gt;") == 13
    assert 'src="data:image/png;base64,iVBORw=="' in page
    table = Document("t", "", (Section("s", tables=(Table("t", ("a|b",), (("c|d",),)),)),))
    assert "| a\\|b |" in to_markdown(table) and "| c\\|d |" in to_markdown(table)


def test_parse_formats():
    assert parse_formats("png") == ("png",)
    assert parse_formats(" SVG, pdf ,svg") == ("svg", "pdf")
    with pytest.raises(UsageError, match="unknown format 'gif'"):
        parse_formats("gif")
    with pytest.raises(UsageError):
        parse_formats(",")


def test_the_map_zooms_to_its_regions_and_keeps_a_minimum_size():
    # Amsterdam, Frankfurt, Gavle: Europe with a margin, at least 50 x 28 degrees.
    lon0, lon1, lat0, lat1 = map_extent([4.9, 8.7, 17.1], [52.4, 50.1, 60.7])
    assert lon0 < 4.9 - 10 and lon1 > 17.1 + 10 and lat0 < 50.1 - 5 and lat1 > 60.7 + 5
    assert lon1 - lon0 >= 50 and lat1 - lat0 >= 28
    # One region near the pole: the box slides inside the world instead of leaving it.
    lon0, lon1, lat0, lat1 = map_extent([179.0], [85.0])
    assert lon1 <= 180 and lat1 <= 90 and lon1 - lon0 >= 50 and lat1 - lat0 >= 28
    # Regions all round the world: all of it.
    assert map_extent([-120, 0, 140], [40, 50, 35])[:2] == (-180.0, 180.0)


def test_the_land_file_names_its_source_and_covers_the_continents():
    import json

    land = json.loads(LAND.read_text(encoding="utf-8"))
    assert "Natural Earth" in land["source"] and "public domain" in land["source"]
    points = np.concatenate([np.asarray(r, dtype=float).reshape(-1, 2) for r in land["rings"]])
    assert points[:, 0].min() <= -179 and points[:, 0].max() >= 179 and points[:, 1].min() < -80
    assert len(land["rings"]) > 200


def test_charts_name_metrics_and_settings_in_words_with_units():
    from sim.report.labels import metric_label, param_label

    assert metric_label("inference.ttft_ms.p99") == "time to first token, p99 (ms)"
    assert metric_label("inference.prefix_cache.hit_rate") == "prefix cache hit rate (share)"
    assert metric_label("inference.by_origin.eastus.latency_ms.p99") == "end-to-end latency (eastus), p99 (ms)"
    assert metric_label("training.jct_h.mean") == "job completion time, mean (h)"
    assert metric_label("some.new_metric") == "new metric"  # unnamed: its own words
    assert param_label("regions.eu-west.pools.a100.replicas") == "replicas of eu-west/a100"
    assert param_label("inference.chat.arrival.rate_per_s") == "arrival rate of chat (requests/s)"
    assert param_label("regions.0.pools.0.replicas") == "replicas"
