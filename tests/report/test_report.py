"""``simulate.py report`` on run, comparison and sweep folders: files, contents, determinism,
skipped charts, and the errors a user meets."""
import json
import re
import shutil
import subprocess
import sys

import pytest

from sim.report import build_report
from tests.conftest import MINIMAL, ROOT
from tests.report.conftest import digests

RUN_CHARTS = ["batching", "energy", "failures", "inference", "latency_cdf", "map", "overview", "serving", "slo",
              "training", "transfers", "utilization_heatmap"]


def chart_names(report):
    return sorted(r.chart.name for r in report.charts)


def test_run_report_draws_every_chart_in_every_format(full_report):
    run, report, _ = full_report
    assert report.kind == "run" and report.skipped == []
    assert chart_names(report) == RUN_CHARTS
    for name in RUN_CHARTS:
        for fmt in ("png", "svg", "pdf"):
            assert (run / "charts" / f"{name}.{fmt}").stat().st_size > 1000
    assert report.html == run / "report.html" and report.markdown == run / "report.md"
    assert not list(run.glob(".*.tmp*")) and not list((run / "charts").glob(".*"))


def test_run_report_is_byte_identical_when_drawn_again(full_report):
    run, _, first = full_report
    build_report(run, ("png", "svg", "pdf"))
    assert digests(run) == first


def test_run_report_page_holds_provenance_tables_and_embedded_charts(full_report):
    run, report, _ = full_report
    page = (run / "report.html").read_text()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config_sha256"] in page and manifest["git_commit"] in page
    assert f"python simulate.py run {run.parent / 'full.yaml'} --out {run}" in page
    assert "numpy " + manifest["versions"]["numpy"] in page
    for caption in ("Inference", "Inference by origin region", "Training", "Network and data", "Energy"):
        assert f"<caption>{caption}" in page
    images = re.findall(r'<img alt="[^"]*" src="([^"]*)"', page)
    assert len(images) == len(RUN_CHARTS) and all(s.startswith("data:image/png;base64,") for s in images)
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    markdown = (run / "report.md").read_text()
    links = re.findall(r"\]\((charts/[^)]+)\)", markdown)
    assert sorted(links) == [f"charts/{n}.png" for n in RUN_CHARTS]
    assert "| SLO attainment |" in markdown


def test_svg_only_is_embedded_as_svg(tmp_path, full_report):
    run, _, _ = full_report
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("charts", "report.*", "requests.npz", "jobs.csv"))
    report = build_report(copy, ("svg",))
    page = (copy / "report.html").read_text()
    assert page.count('src="data:image/svg+xml;base64,') == len(report.charts)
    assert not list((copy / "charts").glob("*.png"))


def test_missing_data_skips_charts_and_says_why(tmp_path, cli):
    (tmp_path / "mini.yaml").write_text(MINIMAL)
    result = cli("run", str(tmp_path / "mini.yaml"), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    run = tmp_path / "run"
    (run / "resolved.yaml").unlink()
    result = cli("report", str(run))
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == str(run / "report.html")
    assert sorted(p.stem for p in (run / "charts").glob("*.png")) == ["energy", "overview", "utilization_heatmap"]
    page = (run / "report.html").read_text()
    for reason in ("map: resolved.yaml absent", "latency_cdf: latency_cdf.csv absent", "training: jobs.csv absent",
                   "transfers: transfers.csv absent", "slo: requests.npz absent"):
        assert reason in page
    assert "<caption>Inference" not in page and "<caption>Capacity" in page


def test_comparison_report(comparison_folder, cli):
    result = cli("report", str(comparison_folder), "--metric", "inference.latency_ms.p99",
                 "--metric", "utilization.mean")
    assert result.code == 0, result.err
    assert result.out.startswith("comparison report: 5 charts, 0 skipped")
    names = sorted(p.name for p in (comparison_folder / "charts").iterdir())
    assert names == ["latency_by_origin.png", "latency_cdf.png", "map.png", "metrics.png", "utilization.png"]
    page = (comparison_folder / "report.html").read_text()
    assert "python simulate.py compare" in page and "least_loaded" in page
    manifest = json.loads((comparison_folder / "nearest-s5" / "manifest.json").read_text())
    assert f"<td>{manifest['config_sha256'][:12]}</td>" in page
    paired = page.split("paired difference to the baseline", 1)[1].split("</table>", 1)[0]
    assert paired.count("<tr>") == 1 + 2 * 2  # header + 2 metrics x 2 policies
    assert "<td>baseline</td>" in paired


def test_sweep_report_with_a_chosen_metric(sweep_folder, cli):
    result = cli("report", str(sweep_folder), "--metric", "inference.latency_ms.mean", "--format", "svg,png")
    assert result.code == 0, result.err
    assert {p.name for p in (sweep_folder / "charts").iterdir()} >= {"sweep.svg", "sweep.png", "map.svg"}
    page = (sweep_folder / "report.html").read_text()
    assert "python simulate.py sweep" in page and "inference.0.arrival.rate_per_s" in page
    assert 'src="data:image/svg+xml;base64,' in page  # the first of png/svg asked for
    means = page.split("Mean over seeds per grid point", 1)[1].split("</table>", 1)[0]
    assert means.count("<tr>") == 1 + 2  # header + 2 grid points x 1 metric


def test_unknown_metric_is_a_usage_error(sweep_folder, cli):
    result = cli("report", str(sweep_folder), "--metric", "inference.nope")
    assert result.code == 2
    assert result.err.startswith("--metric: inference.nope not in index.csv (available: inference.latency_ms.mean")


def test_not_a_result_folder_exits_2_without_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = subprocess.run([sys.executable, str(ROOT / "simulate.py"), "report", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (f"{tmp_path}: not a result folder: expected summary.json, manifest.json and "
                             "timeseries.csv (a run), comparison.json (a comparison), index.csv (a sweep), "
                             "uncertainty_report.json (an uncertainty study) or plan_calendar.json (a build plan)\n")
    assert not (tmp_path / "report.html").exists()


def test_other_input_errors(tmp_path, cli):
    assert cli("report", str(tmp_path / "absent")).err == f"{tmp_path / 'absent'}: no such folder\n"
    (tmp_path / "summary.json").write_text("{}")
    result = cli("report", str(tmp_path))
    assert result.code == 2
    assert result.err == (f"{tmp_path}: incomplete run folder: missing manifest.json, timeseries.csv "
                          "(did the run finish?)\n")
    (tmp_path / "index.csv").write_text("")
    (tmp_path / "summary.json").unlink()
    result = cli("report", str(tmp_path), "--format", "png,jpg")
    assert (result.code, result.err) == (
        2, "--format: unknown format 'jpg' (choose from png, svg, pdf, comma-separated)\n")
    (tmp_path / "comparison.json").write_text("{not json")
    result = cli("report", str(tmp_path))
    assert result.code == 2 and result.err.startswith(f"{tmp_path / 'comparison.json'}:1: not valid JSON")


def test_a_run_without_success_is_reported_as_incomplete(tmp_path, cli):
    (tmp_path / "mini.yaml").write_text(MINIMAL)
    run = tmp_path / "run"
    assert cli("run", str(tmp_path / "mini.yaml"), "--out", str(run)).code == 0
    (run / "_SUCCESS").unlink()  # killed after summary.json, before _SUCCESS
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    result = cli("report", str(run), "--quiet")  # no progress line, however slow the machine
    assert result.code == 0, result.err
    why = "the run did not finish (no _SUCCESS; manifest status running): its results may be partial or from " \
          "before a failure"
    assert result.err == f"warning: {run}: {why}; the report is marked INCOMPLETE\n"
    page = (run / "report.html").read_text()
    assert "<h1>INCOMPLETE Run report: mini</h1>" in page and why in page
    assert (run / "report.md").read_text().startswith("# INCOMPLETE Run report: mini")


def test_a_summary_that_is_not_utf8(tmp_path, cli):
    (tmp_path / "mini.yaml").write_text(MINIMAL)
    run = tmp_path / "run"
    assert cli("run", str(tmp_path / "mini.yaml"), "--out", str(run)).code == 0
    (run / "summary.json").write_bytes(b"\xff\xfe{}")
    assert cli("report", str(run)).err == f"{run / 'summary.json'}: not a UTF-8 text file\n"


@pytest.mark.parametrize(("name", "damage", "message"), [
    ("summary.json", b"[" * 100_000 + b"]" * 100_000,
     "cannot be read (RecursionError: maximum recursion depth exceeded while decoding a JSON array from a unicode "
     "string)"),
    ("summary.json", b'{"seed": 1' + b"0" * 5000 + b"}", "cannot be read (ValueError: Exceeds the limit (4300 digits)"),
    ("timeseries.csv", b"\xff\xfe\x00garbage\n", "not a UTF-8 text file"),
    ("timeseries.csv", b"region,t_start_s\n" + b"1" * 200_000 + b"\n",
     "cannot be read (Error: field larger than field limit (131072))"),
    ("latency_cdf.csv", b"a,b\n1,x\n", "missing column 'origin'"),
])
def test_a_damaged_result_file_is_named_not_a_traceback(tmp_path, cli, name, damage, message):
    run = tmp_path / "run"
    assert cli("run", str(ROOT / "scenarios" / "validation" / "mmc.yaml"), "--set", "duration=10m", "--set",
               "warmup=0", "--out", str(run), "--no-charts", "--quiet").code == 0
    (run / name).write_bytes(damage)
    result = cli("report", str(run), "--quiet")
    assert result.code == 2
    assert result.err.startswith(f"{run / name}: {message}")
