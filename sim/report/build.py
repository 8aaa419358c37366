"""``simulate.py report PATH``: redraw every chart of a result folder from its files, without
simulating again, and write ``report.html`` and ``report.md`` beside them.

The folder's kind is judged by its files (:func:`~sim.report.files.folder_kind`): a run, a
comparison or a sweep. Each kind lists its charts (a chart whose data is absent is skipped
and the report says why), its key-result tables and its provenance: the scenario, config
hash, seeds, versions, git commit and the exact command that produced it. Charts are saved
in each requested format (``png``, ``svg``, ``pdf``); the HTML page embeds the first of PNG
or SVG requested (PNG if only PDF was asked for, drawn in addition). Everything written
is deterministic: the same folder gives byte-identical files.

A run folder without ``_SUCCESS`` (killed, failed, still running) is reported with its
title marked INCOMPLETE and a first section saying why; ``Report.incomplete`` says so too.

Public: ``Report``, ``CAPTIONS``, ``parse_formats``, ``build_report``, ``incomplete_run``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import OutputError, UsageError
from sim.fileio import write_text_atomic
from sim.progress import Progress
from sim.report.charts import stamp
from sim.report.chartspec import Chart, Rendered, Skipped, render_charts
from sim.report.compare import (
    DONE,
    chosen_metrics,
    comparison_charts,
    experiment_footer,
    read_comparison,
    read_index,
    sweep_charts,
    sweep_columns,
    sweep_seeds,
    varying_metrics,
)
from sim.report.document import Document, Figure, Section, Table, to_html, to_markdown
from sim.report.files import folder_kind, read_json
from sim.report.kpis import (
    comparison_tables,
    experiment_provenance,
    reproduce_command,
    run_provenance,
    run_tables,
    sweep_tables,
)
from sim.report.runcharts import read_run, run_charts
from sim.report.style import FORMATS
from sim.report.uncertainty import read_uncertainty, uncertainty_charts, uncertainty_tables

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

__all__ = ["Report", "CAPTIONS", "parse_formats", "build_report", "incomplete_run"]

# What each chart shows, in a sentence (docs/reports.md says the same at more length).
CAPTIONS = {
    "map": "Regions at their coordinates, marker area proportional to installed GPUs (hollow: users only); "
           "links drawn as great-circle arcs, coloured by the bytes copies (datasets, checkpoints, KV caches) sent "
           "over them when the run moved data, else by RTT.",
    "overview": "The load model L(t) and the allocation R(t) it drives, as a share of the weighted fleet (when a "
                "scheduler applies them), the GPUs kept active in each region (left out when they never change: "
                "the legend then gives each region's GPUs), and utilisation ((inference + training busy GPUs) / "
                "installed GPUs) per bucket, on a UTC clock; the warm-up is shaded, outages, link failures and "
                "partitions hatched.",
    "utilization_heatmap": "Utilisation of each region in each time bucket, 0 to 100 %.",
    "latency_cdf": "Share of post-warm-up requests completed within a latency (RTT + wait + service), per "
                   "origin region and for all requests; the dotted line is the SLO when one applies.",
    "inference": "Requests reaching each region's pools (per second), mean queue length and the p99 latency of "
                 "requests completing (in seconds once it reaches 10 s), per bucket; outages hatched.",
    "serving": "Each point is one time bucket of one region: the rate of requests reaching its pools against "
               "the p99 time to first token (network, queue and prefill; log scale) and the mean time per "
               "output token of the requests completing in it.",
    "batching": "Sequences per iteration of each region's busy batching replicas, and the share of their "
                "KV cache in use (time averages per bucket).",
    "slo": "Share of requests (by arrival bucket) completed within every objective of their workload (TTFT, "
           "TPOT, end-to-end), over completed "
           "plus dropped, for all origins and each origin.",
    "training": "Job completion time (end - arrival) and queueing delay as CDFs per workload; GPU-hours "
                "held split into useful work, work lost to interruptions and other held time.",
    "transfers": "Bytes and egress cost of copies (datasets, checkpoints, KV caches) from each source "
                 "(row) to each destination "
                 "(column); bytes that crossed a jurisdiction border, per dataset and direction.",
    "energy": "Energy, carbon and electricity cost of each region from the TDP/idle/PUE power model.",
    "latency_by_origin": "Latency CDF of each origin region for each policy: median seed with the range "
                         "across seeds shaded.",
    "utilization": "GPU-weighted utilisation of all regions over time for each policy: median seed with the "
                   "range across seeds shaded.",
    "metrics": "Each metric's mean over seeds per policy with its 95 % t interval (shares in percent).",
    "sweep": "Each metric against the swept parameter: one dot per seed, the mean over seeds as a line and "
             "its 95 % t interval shaded; one line per value of a second parameter (shares in percent).",
    "uncertainty": "Each KPI's value in each sample (its mean over seeds) against the uncertain input that moves it "
                   "most, with the median over samples and the bands holding 50 % and 90 % of them; a target, when "
                   "one was asked for, dash-dot.",
    "targets": "The share of samples meeting each target, with its Wilson 95 % interval.",
    "calendar": "Left: each KPI per quarter over the samples (median, 50 % and 90 % bands) from what decided "
                "the plan (exact runs or the fluid search), the other's median dashed, the target dotted with "
                "each quarter's probability of meeting it. Right: the fleet of the planned pools (+n arriving, -n "
                "retired), the power of capped regions against their caps, and the spend per quarter.",
    "plan": "The target metric against the varied capacity as the search evaluated it: one dot per seed, the "
            "mean over seeds with its 95 % t interval, the target (dash-dot) and the answer (dotted).",
}


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote."""

    kind: str
    html: Path
    markdown: Path
    charts: list[Rendered]
    skipped: list[Skipped]
    incomplete: str = ""  # why a run folder's results are partial (no _SUCCESS); empty when complete


@dataclass(frozen=True)
class _Content:
    title: str
    subtitle: str
    command: str
    provenance: Table
    tables: list[Table]
    charts: list[Chart | Skipped]
    incomplete: str = ""
    footer: Callable[[MplFigure], None] | None = None  # the line under each chart: what it shows


def parse_formats(text: str) -> tuple[str, ...]:
    """``"png,svg"`` -> ``("png", "svg")``; an unknown format is a usage error."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"--format: unknown format {', '.join(map(repr, unknown)) or repr(text)} "
                         f"(choose from {', '.join(FORMATS)}, comma-separated)")
    return formats


def _run_content(folder: Path, metrics: Sequence[str] | None) -> _Content:
    run = read_run(folder)
    m = run.manifest
    incomplete = incomplete_run(folder, m)
    approximate = "APPROXIMATE (fluid mode) " if m.get("approximate") else ""
    title = f"{'INCOMPLETE ' if incomplete else ''}{approximate}Run report: {m.get('scenario', folder.name)}"
    return _Content(title,
                    f"Run folder {folder.name}: seed {m.get('seed')}, config {str(m.get('config_sha256'))[:12]}, "
                    f"status {m.get('status')}.",
                    reproduce_command(m.get("command") or []), run_provenance(m, run.summary),
                    run_tables(run.summary), run_charts(run), incomplete,
                    lambda fig: stamp(fig, folder, tight=True))


def incomplete_run(folder: Path, manifest: dict[str, Any]) -> str:
    """Why a run folder without ``_SUCCESS`` is partial ("" when the run finished)."""
    if (folder / "_SUCCESS").is_file():
        return ""
    error = f": {manifest['error']}" if manifest.get("error") else ""
    return (f"the run did not finish (no _SUCCESS; manifest status {manifest.get('status')}{error}): "
            "its results may be partial or from before a failure")


def _first_manifest(folder: Path, runs: Sequence[str]) -> dict[str, Any]:
    for name in runs:
        if (folder / name / "manifest.json").is_file():
            return read_json(folder / name / "manifest.json")
    return {}


def _counts(statuses: Sequence[str]) -> str:
    return ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses)) or "none"


def _comparison_content(folder: Path, metrics: Sequence[str] | None) -> _Content:
    report = read_comparison(folder)
    chosen = chosen_metrics([m for m in report.get("metrics", []) if m in report.get("results", {})],
                            metrics, "comparison.json")
    manifest = _first_manifest(folder, [r["run"] for r in report["runs"]])
    policies = "; ".join(f"{p['label']} = {p['name']}{' ' + str(p['params']) if p.get('params') else ''}"
                         for p in report["policies"])
    seeds = ", ".join(map(str, report.get("seeds", [])))
    fields = [("scenario file", report.get("scenario")), ("baseline", report.get("baseline")),
              ("policies", policies), ("seeds", seeds),
              ("runs", _counts([r["status"] for r in report["runs"]]))]
    name = Path(str(report.get("scenario", folder.name))).stem
    hashes = {r["run"]: str(read_json(path).get("config_sha256", "")) for r in report["runs"]
              if (path := folder / r["run"] / "manifest.json").is_file()}
    return _Content(f"Comparison report: {name}",
                    f"Comparison folder {folder.name}: {len(report['policies'])} policies on seeds {seeds}.",
                    reproduce_command(manifest.get("command") or []),
                    experiment_provenance("Comparison", fields, manifest),
                    comparison_tables(report, chosen, hashes), comparison_charts(folder, chosen),
                    footer=experiment_footer(folder, [r["run"] for r in report["runs"] if r["status"] in DONE],
                                             report.get("seeds", [])))


def _sweep_content(folder: Path, metrics: Sequence[str] | None) -> _Content:
    rows = read_index(folder)
    params, available = sweep_columns(rows)
    chosen = chosen_metrics(available, metrics, "index.csv")
    spec = read_json(folder / "sweep.json") if (folder / "sweep.json").is_file() else {}
    manifest = _first_manifest(folder, [r.get("run", "") for r in rows])
    grid = "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in (spec.get("grid") or {}).items())
    fields = [("scenario file", spec.get("scenario")), ("config sha256", spec.get("config_sha256")),
              ("grid", grid or ", ".join(params)), ("seeds", ", ".join(map(str, spec.get("seeds", [])))),
              ("runs", _counts([r.get("status", "") for r in rows]))]
    name = Path(str(spec.get("scenario", folder.name))).stem
    return _Content(f"Sweep report: {name}", f"Sweep folder {folder.name}: {len(rows)} runs over {', '.join(params)}.",
                    reproduce_command(manifest.get("command") or []),
                    experiment_provenance("Sweep", fields, manifest),
                    sweep_tables(rows, params, chosen),
                    sweep_charts(folder, chosen if metrics else varying_metrics(rows, chosen)),
                    footer=experiment_footer(folder, [r.get("run", "") for r in rows if r.get("status") in DONE],
                                             sweep_seeds(folder, rows)))


def _uncertainty_content(folder: Path, metrics: Sequence[str] | None) -> _Content:
    report = read_uncertainty(folder)
    chosen = chosen_metrics(list(report["kpis"]), metrics, "uncertainty_report.json")
    runs = sorted(p.name for p in folder.iterdir() if (p / "manifest.json").is_file())
    manifest = _first_manifest(folder, runs)
    inputs = "; ".join(f"{i['path']} ~ {i['dist']} {i.get('params', {})}" for i in report["inputs"])
    seeds = report.get("seeds", [])
    fields = [("scenario file", report.get("scenario")), ("samples", report.get("samples")),
              ("seeds per sample", ", ".join(map(str, seeds))), ("uncertain inputs", inputs),
              ("failed runs", len(report.get("failed_runs") or []))]
    name = Path(str(report.get("scenario", folder.name))).stem
    return _Content(f"Uncertainty report: {name}",
                    f"Study folder {folder.name}: {report.get('samples')} Latin-hypercube samples x "
                    f"{len(seeds)} seed(s).",
                    reproduce_command(manifest.get("command") or []),
                    experiment_provenance("Uncertainty study", fields, manifest),
                    uncertainty_tables(report, chosen), uncertainty_charts(folder, metrics),
                    footer=experiment_footer(folder, runs, seeds))


def _calendar_content(folder: Path, metrics: Sequence[str] | None) -> _Content:
    from sim.report.calendar import calendar_charts, calendar_tables, read_calendar_report

    report = read_calendar_report(folder)
    cal = report["calendar"]
    fields = [("scenario file", report.get("scenario")), ("quarters", cal.get("quarters")),
              ("target", f"{cal.get('target')} with probability {cal.get('probability')}"),
              ("samples", len(report.get("samples", []))),
              ("uncertain inputs", "; ".join(f"{i['path']} ~ {i['dist']} {i.get('params', {})}"
                                            for i in report.get("inputs", []))),
              ("exact runs", f"{report.get('exact')} "
                             f"({report.get('fluid_bias') or 'the fluid mode is not biased here'})"),
              ("runs", f"{report.get('fluid_runs', 0)} fluid, {report.get('exact_runs', 0)} exact")]
    name = Path(str(report.get("scenario", folder.name))).stem
    return _Content(f"Build plan: {name}",
                    f"Plan folder {folder.name}: {cal.get('quarters')} quarters, {report['total_usd']:,.0f} USD of "
                    "orders" + ("" if report.get("met") else "; the target is NOT met in every quarter") + ".",
                    reproduce_command(report.get("command") or []),
                    experiment_provenance("Build plan", fields, {}),
                    calendar_tables(report), calendar_charts(folder, report))


_CONTENT = {"run": _run_content, "comparison": _comparison_content, "sweep": _sweep_content,
            "uncertainty": _uncertainty_content, "calendar": _calendar_content}


def _figures(rendered: list[Rendered], embed: str, folder: Path) -> tuple[Figure, ...]:
    return tuple(Figure(r.chart.title, f"{CAPTIONS.get(r.chart.name, '')} Drawn from {r.chart.reads}.",
                        r.files[embed], r.files[embed].relative_to(folder).as_posix()) for r in rendered)


def _document(content: _Content, folder: Path, rendered: list[Rendered], skipped: list[Skipped],
              embed: str) -> Document:
    redraw = f"python simulate.py report {folder.resolve()}"
    sections = [Section("Incomplete run", notes=(content.incomplete,))] if content.incomplete else []
    sections += [
        Section("Reproduce", text="The command that produced these results, then the one that redraws this report:",
                code=f"{content.command}\n{redraw}"),
        Section("Provenance", tables=(content.provenance,)),
        Section("Key results", tables=tuple(content.tables)),
        Section("Charts", figures=_figures(rendered, embed, folder)),
    ]
    if skipped:
        sections.append(Section("Charts not drawn", notes=tuple(f"{s.name}: {s.reason}" for s in skipped)))
    return Document(content.title, content.subtitle, tuple(sections))


def build_report(folder: Path, formats: Sequence[str] = ("png",), metrics: Sequence[str] | None = None,
                 quiet: bool = True) -> Report:
    """Redraw the charts of ``folder`` and write ``report.html`` and ``report.md`` into it;
    unless ``quiet``, show the charts drawn on stderr (:mod:`sim.progress`)."""
    folder = Path(folder)
    kind = folder_kind(folder)
    embed = next((f for f in formats if f in ("png", "svg")), "png")
    content = _CONTENT[kind](folder, metrics)
    html_path, md_path = folder / "report.html", folder / "report.md"
    try:
        with Progress(f"report {folder.name}", len(content.charts), "charts", quiet=quiet) as bar:
            rendered, skipped = render_charts(content.charts, folder / "charts",
                                              tuple(dict.fromkeys([*formats, embed])), content.footer, bar.advance)
        doc = _document(content, folder, rendered, skipped, embed)
        write_text_atomic(html_path, to_html(doc))
        write_text_atomic(md_path, to_markdown(doc))
    except OSError as exc:  # a read-only folder, a full disk
        raise OutputError(f"cannot write the report in {folder}: {exc.strerror or exc}"
                          + (f" ({exc.filename})" if exc.filename else "")) from None
    return Report(kind, html_path, md_path, rendered, skipped, content.incomplete)
