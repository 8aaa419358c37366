#!/usr/bin/env python3
"""Meridian's command line: a thin layer over :mod:`sim`.

    python simulate.py                       run scenarios/default.yaml
    python simulate.py run FILE [--seed N] [--out DIR] [--set path=value]... [--max-memory 8GB] [--force]
                                           [--no-charts] [--fidelity exact|fluid] [--quiet]
    python simulate.py validate FILE... [--set path=value]...
    python simulate.py schema                JSON Schema of scenario files
    python simulate.py predict --t HOURS [--scenario FILE]
    python simulate.py policies              built-in policies, their parameters
    python simulate.py compare FILE --policy A --policy B [--kind routing|placement|allocation] [--seeds 10]
    python simulate.py sweep FILE --grid path=v1,v2 [--seeds N] [--workers N] [--backend dask]
    python simulate.py sweep SWEEP.yaml      a sweep described in a file
    python simulate.py report PATH [--format png,svg,pdf]   redraw charts, write report.html/.md
    python simulate.py serve [--host 127.0.0.1] [--port 8000] [--max-wall 60] [--max-memory 2GB]  (docs/serve.md)
    python simulate.py plan FILE --target "inference.latency_ms.p99<=800" --vary PATH [--range LO:HI]

Input errors print ``FILE:LINE: path: rule (got VALUE)`` and exit with code 2. ``run``,
``compare``, ``sweep``, ``plan`` and ``report`` show progress on stderr unless ``--quiet``
(:mod:`sim.progress`); the same ``sweep`` or ``plan`` on a finished folder answers from it
at once (:mod:`sim.experiment.done`).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUIET_HELP = ("show no progress on stderr (shown by default: a bar on a terminal, "
              "otherwise a line every 10 s)")
DEFAULT_SCENARIO = HERE / "scenarios" / "default.yaml"


def _finite(text: str) -> float:
    """An argparse type: a finite number (``nan`` and ``inf`` are refused with exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def _positive(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text!r})")
    return value


def _size(text: str) -> float:
    from sim.units import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (got {text!r})") from None


def _parser(light: bool = False) -> argparse.ArgumentParser:
    """The command line. ``light`` (for ``sweep`` and ``plan``) leaves out the options of
    ``run``, ``serve`` and ``compare``, whose defaults and choices load the scenario model and
    the service: a finished sweep or plan then answers before either is imported."""
    parser = argparse.ArgumentParser(prog="simulate.py", description="Meridian: simulate global AI clusters.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="simulate a scenario and write a run folder")
    if not light:
        _run_options(run)
    validate = sub.add_parser("validate", help="check scenario files")
    validate.add_argument("files", nargs="+")
    validate.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE")
    sub.add_parser("schema", help="print the JSON Schema of scenario files")
    predict = sub.add_parser("predict", help="evaluate the load and allocation formulas at time t")
    predict.add_argument("--t", type=_finite, required=True, help="hours since the start")
    predict.add_argument("--scenario", help="take the parameters from this scenario (default: the seed's)")
    predict.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE")
    serve = sub.add_parser("serve", help="answer predict and run requests over HTTP (docs/serve.md)")
    if not light:
        _serve_options(serve)
    policies = sub.add_parser("policies", help="list the built-in policies and their parameters")
    policies.add_argument("--json", action="store_true", help="print JSON instead of text")
    compare = sub.add_parser("compare", help="run routing policies on the same seeds and compare them")
    if not light:
        _compare_options(compare)
    sweep = sub.add_parser("sweep", help="run the cross product of grid values and seeds (resumable)")
    sweep.add_argument("scenario", help="a scenario file, or a sweep file (YAML with a grid key)")
    sweep.add_argument("--grid", action="append", default=[], metavar="PATH=V1,V2,...",
                       help="a scenario value and the values it takes (repeatable: cross product)")
    sweep.add_argument("--seeds", type=int, help="seeds per point (default 1, or the sweep file's)")
    for cmd in (compare, sweep):
        cmd.add_argument("--quiet", action="store_true", help=QUIET_HELP)
        cmd.add_argument("--metric", dest="metrics", action="append", metavar="DOTTED.PATH",
                         help="summary.json value to report (repeatable; default: the key metrics present)")
        _experiment_options(cmd, "experiment folder (default: results/<scenario>/...)")
    plan = sub.add_parser("plan", help="find the least capacity that meets a target (bisection over runs, resumable)")
    plan.add_argument("scenario")
    plan.add_argument("--target", required=True, metavar="PATH<=NUMBER",
                      help="DOTTED.PATH OP NUMBER on summary.json, OP one of <=, <, >=, > (quote it in a shell)")
    plan.add_argument("--vary", required=True, metavar="DOTTED.PATH",
                      help="an integer scenario value, named as --set names it")
    plan.add_argument("--range", dest="value_range", metavar="LO:HI",
                      help="values to search (default 1:2x the scenario's value)")
    plan.add_argument("--seeds", type=int, default=3, help="seeds s, s+1, ... from the scenario's seed (default 3)")
    plan.add_argument("--rule", choices=("all", "mean"), default="all",
                      help="a value meets the target when every seed does (all, default) or their mean does")
    _experiment_options(plan, "plan folder (default: results/<scenario>/plan-<hash8>)")
    plan.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    unc = sub.add_parser("uncertainty", help="draw a scenario's uncertain inputs (Latin hypercube), run each "
                         "sample, report KPI bands, target probabilities and sensitivities (resumable)")
    unc.add_argument("scenario")
    unc.add_argument("--samples", type=int, default=20, help="Latin-hypercube samples (default 20)")
    unc.add_argument("--seeds", type=int, default=1, help="seeds per sample: s, s+1, ... (default 1)")
    unc.add_argument("--metric", dest="metrics", action="append", default=[], metavar="DOTTED.PATH",
                     help="KPI to report (repeatable; default: the comparison metrics)")
    unc.add_argument("--target", dest="targets", action="append", default=[], metavar="PATH<=NUMBER",
                     help="report the probability that a sample meets it (repeatable)")
    _experiment_options(unc, "study folder (default: results/<scenario>/uncertainty-<hash8>)")
    cal = sub.add_parser("plan-calendar", help="a build plan over quarters from the scenario's plan section: "
                         "what to order where and when, so each quarter meets its target with the probability "
                         "(fluid mode)")
    cal.add_argument("scenario")
    _experiment_options(cal, "plan folder (default: results/<scenario>/calendar-<hash8>)")
    cal.add_argument("--exact", choices=("auto", "refine", "confirm", "none"), default="auto",
                     help="after the fluid search: refine the plan with exact runs (exact runs decide), confirm it "
                          "(the fluid decides, exact runs of every sample beside it), or neither (none); auto "
                          "(default) refines where the fluid mode is known to be biased (load-aware routing over "
                          "several pools, batching replicas, prefix caches) and confirms elsewhere")
    cal.add_argument("--check", type=int, default=0, metavar="N",
                     help="brute force: run the final plan on N fresh Monte Carlo samples and report each "
                          "quarter's share beside the planned one (default 0: no check)")
    cal.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    report = sub.add_parser("report", help="redraw the charts of a run, comparison or sweep folder and "
                                           "write report.html and report.md (no simulation)")
    report.add_argument("path", type=Path, help="a run, comparison or sweep folder")
    report.add_argument("--format", dest="formats", default="png", metavar="png,svg,pdf",
                        help="chart formats, comma-separated (default png; the HTML embeds PNG or SVG)")
    report.add_argument("--metric", dest="metrics", action="append", metavar="DOTTED.PATH",
                        help="comparison/sweep metric to chart and tabulate (repeatable; default: all)")
    report.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    return parser


def _experiment_options(cmd: argparse.ArgumentParser, out_help: str) -> None:
    """The options every experiment of many runs takes: overrides, its folder, executor."""
    cmd.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                     help="override a scenario value in every run (repeatable)")
    cmd.add_argument("--out", type=Path, help=out_help)
    cmd.add_argument("--root", type=Path, default=Path("results"), help="results root for the default folder")
    cmd.add_argument("--workers", type=int, default=1, help="runs at a time (default 1: serial)")
    cmd.add_argument("--backend", choices=("process", "dask"), default="process",
                     help="process: local process pool; dask: dask.distributed")
    cmd.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (tcp://host:8786); default a LocalCluster")


def _run_options(run: argparse.ArgumentParser) -> None:
    from sim.workload.cost import DEFAULT_MAX_REQUESTS

    run.add_argument("scenario", nargs="?", default=str(DEFAULT_SCENARIO))
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--out", type=Path,
                     help="run folder to create (default: results/<scenario>/<time>-<hash>-s<seed>)")
    run.add_argument("--root", type=Path, default=Path("results"), help="results root for the default folder")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                     help="override a scenario value before validation (repeatable)")
    run.add_argument("--max-requests", type=_positive, default=DEFAULT_MAX_REQUESTS, metavar="N",
                     help=f"refuse a run expected to simulate more requests (default {DEFAULT_MAX_REQUESTS:,})")
    run.add_argument("--max-memory", type=_size, metavar="SIZE",
                     help="refuse a run expected to need more memory, e.g. 8GB (default: half of this machine's)")
    run.add_argument("--fidelity", choices=("exact", "fluid"),
                     help="simulate requests one by one (exact) or as flows (fluid: fast, approximate; docs/fluid.md)")
    run.add_argument("--force", action="store_true", help="run even above --max-requests or --max-memory")
    run.add_argument("--no-charts", action="store_true",
                     help="draw no charts (simulate.py report PATH draws them later)")
    run.add_argument("--quiet", action="store_true", help=QUIET_HELP)


def _serve_options(serve: argparse.ArgumentParser) -> None:
    from sim.serve import Limits
    from sim.workload.cost import format_bytes

    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    serve.add_argument("--max-duration", default="7d", help="longest simulated duration a run may ask for (default 7d)")
    serve.add_argument("--max-wall", type=_positive, default=60.0,
                       help="seconds a run may take before it is killed (default 60)")
    serve.add_argument("--max-runs", type=int, default=2, help="runs at a time; more are answered 503 (default 2)")
    limits = Limits()
    serve.add_argument("--max-requests", type=_positive, default=limits.max_requests, metavar="N",
                       help=f"refuse a run expected to simulate more requests (default {limits.max_requests:,.0f})")
    serve.add_argument("--max-memory", type=_size, default=limits.max_memory_bytes, metavar="SIZE",
                       help="refuse a run expected to need more memory, and cap each run's process at it "
                            f"(default {format_bytes(limits.max_memory_bytes)})")
    serve.add_argument("--max-connections", type=int, default=limits.max_connections, metavar="N",
                       help=f"connections served at once; more are answered 503 (default {limits.max_connections})")


def _compare_options(compare: argparse.ArgumentParser) -> None:
    from sim.scenario.kinds import POLICY_KINDS

    compare.add_argument("scenario")
    compare.add_argument("--policy", dest="policies", action="append", required=True, metavar="NAME",
                         help="a registered policy of --kind or package.module:Class "
                              "(repeat; the first is the baseline)")
    compare.add_argument("--policy-param", dest="policy_params", action="append", default=[],
                         metavar="NAME.KEY=VALUE", help="a parameter of one --policy (repeatable)")
    compare.add_argument("--seeds", type=int, default=10,
                         help="seeds s, s+1, ... from the scenario's seed (default 10)")
    compare.add_argument("--kind", choices=tuple(POLICY_KINDS), default="routing",
                         help="which kind of policy --policy names (default routing)")


def _cmd_report(args: argparse.Namespace) -> int:
    from sim.report import build_report, parse_formats

    report = build_report(args.path, parse_formats(args.formats), args.metrics, quiet=args.quiet)
    if report.incomplete:
        print(f"warning: {args.path}: {report.incomplete}; the report is marked INCOMPLETE", file=sys.stderr)
    print(f"{report.kind} report: {len(report.charts)} charts, {len(report.skipped)} skipped "
          f"(no data); {report.markdown}")
    print(report.html)
    return 0


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from sim.errors import ScenarioError
    from sim.progress import Progress
    from sim.report import draw_run_charts  # matplotlib loads only if a chart is drawn
    from sim.report.closing import closing_summary
    from sim.runner import preflight, run_scenario
    from sim.scenario import load_scenario
    from sim.workload.cost import Budget, budget_problems, compiled_batching, estimate_cost

    sets = list(args.sets) + ([f"seed={args.seed}"] if args.seed is not None else [])
    sets += [f"fidelity={args.fidelity}"] if args.fidelity else []
    loaded = load_scenario(args.scenario, sets)
    preflight(loaded)  # before the estimate, which reads the same trace files
    estimate = estimate_cost(loaded)
    print(f"estimate: {estimate.describe()}", flush=True)
    over = budget_problems(loaded, estimate, Budget(args.max_requests, args.max_memory))
    if over and not args.force:
        raise ScenarioError(over)
    if compiled_batching(loaded.scenario):
        from sim.engine.batching_compiled import compiles_first, warm_up

        if compiles_first(estimate.requests):
            print("compiling the batching replicas' code first (numba; once on this machine, 10 to 20 s)",
                  flush=True)
            warm_up()
    finishers = [] if args.no_charts else [draw_run_charts]
    with Progress(f"run {loaded.scenario.name}", loaded.scenario.duration, "h simulated", scale=3600.0,
                  quiet=args.quiet) as progress:
        run_dir = run_scenario(loaded, out=args.out, root=args.root, command=["simulate.py", *argv],
                               finishers=finishers, progress=progress)
    print("\n".join(closing_summary(run_dir)))
    print(run_dir)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sim.errors import ScenarioError
    from sim.runner import preflight
    from sim.scenario import load_scenario
    from sim.workload.cost import Budget, budget_problems, estimate_cost

    failed = False
    for name in args.files:
        try:
            loaded = load_scenario(name, args.sets)
            preflight(loaded, import_modules=False)  # a module policy's code runs only in a run
            estimate = estimate_cost(loaded)
            print(f"{name}: ok ({estimate.describe()})")
            for problem in budget_problems(loaded, estimate, Budget()):
                print(f"warning: {problem.format()}; run refuses it", file=sys.stderr)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            failed = True
    return 2 if failed else 0


def _cmd_schema() -> int:
    from sim.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from sim.models.predict import predict
    from sim.scenario import load_scenario

    scheduler = load_scenario(args.scenario, args.sets).scenario.scheduler if args.scenario else None
    print(json.dumps(predict(args.t, scheduler, args.scenario or "")))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from sim.errors import UsageError
    from sim.serve import Limits, Service, serve
    from sim.units import parse_duration

    try:
        max_duration_s = parse_duration(args.max_duration)
    except ValueError as exc:
        raise UsageError(f"--max-duration: {exc} (got {args.max_duration!r})") from None
    limits = Limits(max_duration_s=max_duration_s, max_wall_s=args.max_wall, max_runs=args.max_runs,
                    max_requests=args.max_requests, max_memory_bytes=args.max_memory,
                    max_connections=args.max_connections)
    return serve(Service(HERE / "scenarios", limits), args.host, args.port)


def _cmd_policies(args: argparse.Namespace) -> int:
    import dataclasses

    from sim.experiment import format_catalogue, policy_catalogue

    catalogue = policy_catalogue()
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in catalogue], indent=2))
    else:
        print(format_catalogue(catalogue))
    return 0


def _cmd_compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from sim.experiment import format_table, parse_policy_params, plan_comparison, run_comparison
    from sim.report.compare import draw_comparison_charts

    choices = parse_policy_params(args.policies, args.policy_params, args.kind)
    plan = plan_comparison(args.scenario, choices, args.seeds, args.sets, args.metrics, args.out, args.root,
                           ["simulate.py", *argv])
    report = run_comparison(plan, args.backend, args.workers, args.scheduler, progress=not args.quiet)
    _draw_charts(draw_comparison_charts, plan.out)
    print(format_table(report))
    failed = [f"{r['run']}: {r['error']}" for r in report["runs"] if r["status"] == "failed"]
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    print(plan.out)
    return 1 if failed else 0


def _draw_charts(draw: Callable[[Path], object], folder: Path) -> None:
    """Draw an experiment's charts after its runs: a disk that fills or a folder made read-only
    meanwhile is an OutputError (exit 2; the runs are kept), not a traceback."""
    from sim.errors import OutputError

    try:
        draw(folder)
    except OSError as exc:
        raise OutputError(f"cannot write the charts in {folder}: {exc.strerror or exc}"
                          + (f" ({exc.filename})" if exc.filename else "")) from None


def _cmd_sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from sim.experiment.done import answer_if_done, command_key, experiment_files, record_done

    files, file_out = experiment_files(args.scenario)
    key = command_key("sweep", _options(args, "grid", "seeds", "sets", "metrics"), files)
    done = answer_if_done(key, args.out or file_out, args.root, "sweep-*")
    if done is not None:
        print(f"sweep: all {_runs(done.runs)} already done in {done.folder} (answered from its index.csv; "
              "nothing ran)")
        print(done.folder)
        return 0
    from sim.experiment import parse_grid, plan_sweep, run_sweep
    from sim.report.compare import draw_sweep_charts

    scenario, axes, seeds, sets, metrics, out = _sweep_inputs(args)
    axes += [parse_grid(text) for text in args.grid]
    plan = plan_sweep(scenario, axes, seeds, sets, metrics, out, args.root, ["simulate.py", *argv])
    outcome = run_sweep(plan, args.backend, args.workers, args.scheduler, progress=not args.quiet)
    counts = {s: outcome.count(s) for s in ("ok", "skipped", "failed", "pending")}
    print(f"sweep: {len(plan.tasks)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if outcome.interrupted:
        print("interrupted: finished runs are kept; run the same command again to finish the rest", file=sys.stderr)
    else:
        _draw_charts(draw_sweep_charts, plan.out)
        if not counts["failed"]:
            record_done(plan.out, key, [Path(t.out).name for t in plan.tasks], [])
    print(plan.out)
    return 130 if outcome.interrupted else 1 if counts["failed"] else 0


def _cmd_plan(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from sim.experiment.done import answer_if_done, command_key, record_done

    key = command_key("plan", _options(args, "target", "vary", "seeds", "value_range", "rule", "sets"),
                      [args.scenario])
    done = answer_if_done(key, args.out, args.root, "plan-*")
    if done is not None:
        print(f"plan: all {_runs(done.runs)} already done in {done.folder} (answered from its index.csv and "
              "plan.json; nothing ran)")
        print("\n".join(done.lines))
        return done.code
    from sim.experiment import format_plan, plan_capacity, run_capacity_plan
    from sim.report.plan import draw_plan_chart

    plan = plan_capacity(args.scenario, args.target, args.vary, args.seeds, args.value_range, args.rule,
                         args.sets, args.out, args.root, ["simulate.py", *argv])
    report = run_capacity_plan(plan, args.backend, args.workers, args.scheduler, progress=not args.quiet)
    _draw_charts(draw_plan_chart, plan.out)
    lines = [format_plan(report), str(plan.out)]
    for run in report["runs"]:
        if run["status"] == "failed":
            print(f"failed: {run['run']}: {run['error']}", file=sys.stderr)
    if report["status"] == "met":
        lines.append(f"{plan.vary}={report['answer']}")  # last line, for scripts
    print("\n".join(lines))
    code = 0 if report["status"] == "met" else 130 if report["status"] == "interrupted" else 1
    if report["status"] in ("met", "not met"):
        record_done(plan.out, key, [r["run"] for r in report["runs"]], lines, code)
    return code


def _runs(n: int) -> str:
    return f"{n} run" + "s" * (n != 1)


def _options(args: argparse.Namespace, *names: str) -> dict[str, object]:
    """The options of an experiment command that decide its answer, for its no-op key
    (paths made absolute: the same command from another folder is another command)."""
    chosen: dict[str, object] = {name: getattr(args, name) for name in names}
    chosen.update(out=args.out and str(args.out.resolve()), root=str(args.root.resolve()),
                  scenario=str(Path(args.scenario).resolve()))
    return chosen


def _cmd_plan_calendar(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import hashlib

    from sim.experiment.calendar import check_plan, format_calendar, plan_calendar, read_calendar
    from sim.experiment.executors import check_executor
    from sim.experiment.tasks import check_run_count

    check_executor(args.backend, args.workers, args.scheduler)
    check_run_count(args.check, "--check")  # before the plan, not after it
    plan = read_calendar(args.scenario, args.out, args.sets)  # a bounded read: /dev/zero is refused here
    text = Path(args.scenario).read_bytes() + "\n".join(args.sets).encode()
    if plan.out is None:
        plan.out = args.root / plan.name / f"calendar-{hashlib.sha256(text).hexdigest()[:8]}"
    executor = {"backend": args.backend, "workers": args.workers, "scheduler": args.scheduler, "quiet": args.quiet}
    report = plan_calendar(plan, args.exact, **executor, command=["simulate.py", *argv])
    if args.check > 0:
        report = check_plan(plan, report, args.check, **executor)
    from sim.report.build import build_report

    build_report(plan.out, quiet=args.quiet)  # charts/calendar.png, report.html and report.md
    print(format_calendar(report))
    print(plan.out)
    return 0 if report["met"] else 1


def _cmd_uncertainty(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from sim.experiment.uncertainty import format_uncertainty, plan_uncertainty, run_uncertainty

    plan = plan_uncertainty(args.scenario, args.samples, args.seeds, args.metrics, args.targets, args.sets,
                            args.out, args.root, ["simulate.py", *argv])
    report = run_uncertainty(plan, args.backend, args.workers, args.scheduler)
    from sim.report.uncertainty import draw_uncertainty_charts

    _draw_charts(draw_uncertainty_charts, plan.out)
    print(format_uncertainty(report))
    print(plan.out)
    return 1 if report["failed_runs"] else 0


def _sweep_inputs(args: argparse.Namespace) -> tuple:
    """(scenario, axes, seeds, sets, metrics, out) from a sweep file and/or the options."""
    from sim.experiment import is_sweep_file, read_sweep_file

    if not is_sweep_file(args.scenario):
        return args.scenario, [], 1 if args.seeds is None else args.seeds, args.sets, args.metrics, args.out
    spec, base = read_sweep_file(args.scenario)
    out = args.out or (base / spec.out if spec.out else None)
    seeds = spec.seeds if args.seeds is None else args.seeds
    return base / spec.scenario, spec.axes(), seeds, [*spec.set, *args.sets], args.metrics or spec.metrics, out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    import warnings

    from sim.errors import MeridianError

    # A deprecated scenario key warns as ``warning: FILE:LINE: path: ...``, not with our source line.
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"

    args = _parser(light=bool(argv) and argv[0] in ("sweep", "plan")).parse_args(argv or ["run"])
    try:
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "schema":
            return _cmd_schema()
        if args.command == "predict":
            return _cmd_predict(args)
        if args.command == "policies":
            return _cmd_policies(args)
        if args.command == "compare":
            return _cmd_compare(args, argv)
        if args.command == "serve":
            return _cmd_serve(args)
        if args.command == "sweep":
            return _cmd_sweep(args, argv)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "plan":
            return _cmd_plan(args, argv)
        if args.command == "uncertainty":
            return _cmd_uncertainty(args, argv)
        if args.command == "plan-calendar":
            return _cmd_plan_calendar(args, argv)
        return _cmd_run(args, argv)
    except MeridianError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error
        sys.stdout = None
        return 0


if __name__ == "__main__":
    sys.exit(main())
