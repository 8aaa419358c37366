#!/usr/bin/env python3
"""Meridian's command line: a thin layer over :mod:`sim`.

    python simulate.py                       run scenarios/default.yaml
    python simulate.py run FILE [--seed N] [--out DIR] [--set path=value]...
    python simulate.py validate FILE... [--set path=value]...
    python simulate.py schema                JSON Schema of scenario files
    python simulate.py predict --t HOURS [--scenario FILE]

Input errors print ``FILE:LINE: path: rule (got VALUE)`` and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
DEFAULT_SCENARIO = HERE / "scenarios" / "default.yaml"
SEED_PARAMS = {"L0": 100.0, "alpha": 0.2, "T0": 0.0, "weights": [0.25] * 4, "L_max": 100.0}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simulate.py", description="Meridian: simulate global AI clusters.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="simulate a scenario and write a run folder")
    run.add_argument("scenario", nargs="?", default=str(DEFAULT_SCENARIO))
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--out", type=Path, help="run folder to create (default: results/<scenario>/<time>-<hash>-s<seed>)")
    run.add_argument("--root", type=Path, default=Path("results"), help="results root for the default folder")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                     help="override a scenario value before validation (repeatable)")
    validate = sub.add_parser("validate", help="check scenario files")
    validate.add_argument("files", nargs="+")
    validate.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE")
    sub.add_parser("schema", help="print the JSON Schema of scenario files")
    predict = sub.add_parser("predict", help="evaluate the load and allocation formulas at time t")
    predict.add_argument("--t", type=float, required=True, help="hours since the start")
    predict.add_argument("--scenario", help="take the parameters from this scenario (default: the seed's)")
    predict.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE")
    return parser


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from sim.report import draw_run_charts
    from sim.runner import run_scenario
    from sim.scenario import load_scenario

    sets = list(args.sets) + ([f"seed={args.seed}"] if args.seed is not None else [])
    loaded = load_scenario(args.scenario, sets)
    run_dir = run_scenario(loaded, out=args.out, root=args.root,
                           command=["simulate.py", *argv], finishers=[draw_run_charts])
    summary = json.loads((run_dir / "summary.json").read_text())
    util = summary["utilization"]["mean"]
    print(f"{loaded.scenario.name}: seed {loaded.scenario.seed}, {summary['sim_time_s'] / 3600:g} h simulated, "
          f"mean utilisation {util * 100:.1f} %")
    print(run_dir)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sim.errors import ScenarioError
    from sim.runner import preflight
    from sim.scenario import load_scenario

    failed = False
    for name in args.files:
        try:
            preflight(load_scenario(name, args.sets))
            print(f"{name}: ok")
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            failed = True
    return 2 if failed else 0


def _cmd_schema() -> int:
    from sim.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from sim.errors import UsageError
    from sim.fileio import clean_numbers
    from sim.models import linear_load, load_at, resources
    from sim.scenario import load_scenario

    if args.scenario is None:
        p = SEED_PARAMS
        load = float(linear_load(args.t, p["L0"], p["alpha"], p["T0"]))
        weights, l_max = p["weights"], p["L_max"]
    else:
        scheduler = load_scenario(args.scenario, args.sets).scenario.scheduler
        if scheduler is None or scheduler.load_model is None:
            raise UsageError(f"{args.scenario}: scheduler.load_model: predict needs a load model and an allocation")
        if scheduler.load_model.kind == "observed":
            raise UsageError(f"{args.scenario}: scheduler.load_model: an observed load depends on simulated "
                             "arrivals; predict evaluates formulas only")
        load = float(load_at(scheduler.load_model, args.t * 3600.0))
        weights, l_max = list(scheduler.allocation.weights.values()), scheduler.allocation.L_max
    print(json.dumps(clean_numbers({"load": load, "resources": resources(weights, load, l_max)})))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from sim.errors import MeridianError

    args = _parser().parse_args(argv or ["run"])
    try:
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "schema":
            return _cmd_schema()
        if args.command == "predict":
            return _cmd_predict(args)
        return _cmd_run(args, argv)
    except MeridianError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
