"""Do two commits give the same results? Byte for byte, on every shipped scenario.

A refactoring must not change what Meridian computes. This script runs every scenario in
``scenarios/`` (with its own seed) on a base commit and on the working tree, and compares
``summary.json`` and ``timeseries.csv`` byte for byte::

    python -m tests.regression.same_outputs --base 039a199            # every shipped scenario
    python -m tests.regression.same_outputs --base HEAD~3 -k default  # names containing 'default'

The base commit is exported with ``git archive`` into ``$TMPDIR/meridian-same-outputs/<commit>/``
and its outputs are kept there, so a second comparison against the same base
only runs the working tree. A scenario the base commit does not have is listed as new and
not compared. Exit code 0 when every file matches, 1 otherwise (the first differing lines
are printed).
"""
from __future__ import annotations

import argparse
import difflib
import io
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPARED = ("summary.json", "timeseries.csv")


def shipped() -> list[str]:
    return sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml"))


def export(commit: str, cache: Path) -> Path:
    """The tree of ``commit`` under ``cache/<sha>/tree`` (exported once)."""
    sha = subprocess.run(["git", "rev-parse", commit], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = cache / sha / "tree"
    if not (tree / "simulate.py").is_file():
        tree.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(tree, filter="data")
    return tree


def run(tree: Path, scenario: str, out: Path) -> Path:
    """Run ``scenario`` (from ``tree``'s own scenarios folder) into ``out``, once."""
    if (out / "_SUCCESS").is_file():
        return out
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "simulate.py", "run", f"scenarios/{scenario}", "--out", str(out)],
                          cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario} failed in {tree}:\n{done.stderr[-2000:]}")
    return out


def differences(a: Path, b: Path) -> list[str]:
    found = []
    for name in COMPARED:
        left, right = a / name, b / name
        if not left.exists() and not right.exists():
            continue
        if not left.exists() or not right.exists() or left.read_bytes() != right.read_bytes():
            lines = difflib.unified_diff(
                left.read_text().splitlines() if left.exists() else [],
                right.read_text().splitlines() if right.exists() else [],
                f"base/{name}", f"work/{name}", n=0, lineterm="")
            found.append(f"{name}:\n" + "\n".join(list(lines)[:12]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="commit to compare against")
    parser.add_argument("-k", default="", help="only scenarios whose file name contains this")
    parser.add_argument("--jobs", type=int, default=2, help="scenarios run at once")
    args = parser.parse_args(argv)
    cache = Path(tempfile.gettempdir()) / "meridian-same-outputs"
    base_tree = export(args.base, cache)
    work_out = cache / "work"
    subprocess.run(["rm", "-rf", str(work_out)], check=True)
    names = [s for s in shipped() if args.k in s]
    new = [s for s in names if not (base_tree / "scenarios" / s).is_file()]  # nothing to compare with
    names = [s for s in names if s not in new]

    def compare(scenario: str) -> tuple[str, list[str]]:
        base = run(base_tree, scenario, base_tree.parent / "out" / scenario)
        work = run(ROOT, scenario, work_out / scenario)
        return scenario, differences(base, work)

    failed = 0
    with ThreadPoolExecutor(args.jobs) as pool:
        for scenario, diffs in pool.map(compare, names):
            print(f"{'same' if not diffs else 'DIFFERENT':9} {scenario}", flush=True)
            for text in diffs:
                print("  " + text.replace("\n", "\n  "))
            failed += bool(diffs)
    for scenario in new:
        print(f"{'new':9} {scenario} (not in the base commit: not compared)")
    print(f"{len(names) - failed} of {len(names)} scenarios give identical outputs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
