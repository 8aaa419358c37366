"""The layer order of `sim/` (STYLE.md, "Dependency direction"), enforced by parsing imports.

Every module under `sim/` belongs to a ranked family (`RANKS`, longest dotted prefix wins)
and may import only families of an equal or lower rank. On top of the ranks:

- SimPy is imported only under `sim.engine`;
- `sim.policies`, `sim.metrics` and `sim.report` never import `sim.engine` or SimPy, and
  `sim.report` never imports `sim.runner` or `sim.experiment` (`FORBIDDEN`);
- `sim.records` is a leaf: from `sim` it imports rank-0 modules only (`LEAVES`);
- a module without a rank, or an import of a `sim.*` name that is not in the tree, is
  itself a violation, so new code cannot slip past the table;
- the scan must have seen the real tree, so a moved or deleted `sim/` fails loudly.

Every import counts: relative ones (resolved against the importing module's package),
`from sim import engine` (a submodule imported as a name), imports inside functions and
`if TYPE_CHECKING:` blocks, `importlib.import_module("<literal>")`, and in a lazy package
(one calling `sim.lazy.lazy_attributes`) every string literal naming a `sim.*` module, since
its `name -> home` table imports that module on first use.

The checker is a set of pure functions over a root folder (the one holding `sim/`):
`list_modules`, `module_imports`, `violations`. The tests at the bottom run it on small
trees built in `tmp_path` that break each rule, so the guard is shown to fail (habit 15).
"""
from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = "sim"

# Rank of each module family; an import must go to an equal or lower rank. A rank for a
# module that does not exist yet is fine; an existing module without one is a violation.
RANKS: dict[str, int] = {
    "sim.units": 0, "sim.errors": 0, "sim.fileio": 0, "sim.streams": 0, "sim.records": 0, "sim.lazy": 0,
    "sim.progress": 0,
    "sim.world.catalogue": 1, "sim.world.geo": 1, "sim.world.llm_catalogue": 1,
    "sim.scenario": 2,
    "sim.world": 3, "sim.models": 3,
    "sim.workload": 4, "sim.policies": 4, "sim.metrics": 4,
    "sim.engine": 5, "sim.fluid": 5,
    "sim.runner": 6,
    "sim.experiment": 7,
    "sim.report": 8,
    "sim.serve": 9,
    "sim": 10,  # the package __init__ only; never a fallback for unranked modules
}
# Importer family -> families (or top-level packages) it must never import, whatever the ranks.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "sim.policies": ("sim.engine", "simpy"),
    "sim.metrics": ("sim.engine", "simpy"),
    "sim.fluid": ("sim.engine", "simpy"),
    "sim.report": ("sim.engine", "simpy", "sim.runner", "sim.experiment"),
}
ENGINE, SIMPY = "sim.engine", "simpy"
# Families every layer may import: from sim they import rank-0 modules only.
LEAVES: tuple[str, ...] = ("sim.records",)

# Known violations of the real tree, waiting for a fix in sim/: (importer, target) pairs.
# Keep this narrow; test_allow_list_is_still_needed fails once an entry is no longer used.
ALLOWED: frozenset[tuple[str, str]] = frozenset()
# The real tree has 128 modules as of this writing; fewer than this means the scan missed part
# of it (lower it only when modules are really removed).
REAL_AT_LEAST = 120
REAL_MUST_HAVE = ("sim.engine.simulation", "sim.runner", "sim.metrics.capacity")


@dataclass(frozen=True)
class Import:
    """One import in `module` (line `line`) of the absolute dotted name `target`."""
    module: str
    target: str
    line: int


# --- scanning a tree ----------------------------------------------------------------------

def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def list_modules(root: Path) -> dict[str, Path]:
    """Every module and package under `root/sim`, by dotted name."""
    paths = sorted((root / TOP).rglob("*.py")) if (root / TOP).is_dir() else []
    return {module_name(root, p): p for p in paths}


def known_names(modules: Iterable[str]) -> set[str]:
    """Modules plus every package above them (a folder without __init__ still imports)."""
    names: set[str] = set()
    for name in modules:
        parts = name.split(".")
        names.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return names


def is_within(name: str, family: str) -> bool:
    return name == family or name.startswith(family + ".")


def package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def from_base(node: ast.ImportFrom, module: str, path: Path) -> str:
    """The absolute module a `from ... import` reads from; '.'-prefixed if it escapes `sim`."""
    if node.level == 0:
        return node.module or ""
    parts = package_of(module, path).split(".")
    up = node.level - 1
    if up >= len(parts):
        return "." * node.level + (node.module or "")
    return ".".join(parts[: len(parts) - up] + ([node.module] if node.module else []))


def from_targets(node: ast.ImportFrom, module: str, path: Path, known: set[str]) -> list[str]:
    base = from_base(node, module, path)
    if base.startswith("."):
        return [base]
    # `from sim import engine` imports the submodule sim.engine; `from sim.engine import
    # simulate` imports the name simulate from sim.engine.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def literal_import_module(node: ast.Call) -> str | None:
    func = node.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__"))
    first = node.args[0] if node.args else None
    if not (named and isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    # A relative name needs the call's `package=` argument; leave those to the reader.
    return None if first.value.startswith(".") else first.value


def calls_lazy_attributes(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "lazy_attributes")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "lazy_attributes"))
        for node in ast.walk(tree))


def lazy_home(node: ast.AST) -> str | None:
    """A string literal naming a `sim` module (a lazy package's `name -> home` table)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    parts = node.value.split(".")
    return node.value if parts[0] == TOP and len(parts) > 1 and all(p.isidentifier() for p in parts) else None


def module_imports(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import anywhere in one module's source, resolved to absolute dotted names."""
    found: set[Import] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lazy = calls_lazy_attributes(tree)  # its `sim.x` string literals are imports on first use
    for node in ast.walk(tree):
        if lazy and (home := lazy_home(node)):
            found.add(Import(module, home, node.lineno))
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = from_targets(node, module, path, known)
        elif isinstance(node, ast.Call) and (name := literal_import_module(node)):
            targets = [name]
        else:
            continue
        found.update(Import(module, t, node.lineno) for t in targets)
    return sorted(found, key=lambda i: (i.line, i.target))


# --- the rules ------------------------------------------------------------------------------

def family(name: str) -> str | None:
    """The longest ranked prefix of `name`; the package rank belongs to `sim` alone."""
    if name == TOP:
        return TOP
    parts = name.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in RANKS:
            return ".".join(parts[:n])
    return None


def rank(name: str) -> int | None:
    fam = family(name)
    return None if fam is None else RANKS[fam]


def forbidden_reason(imp: Import) -> str | None:
    for importer, banned in FORBIDDEN.items():
        hit = next((b for b in banned if is_within(imp.target, b)), None)
        if is_within(imp.module, importer) and hit:
            return f"{importer} never imports {hit}"
    return None


def leaf_reason(imp: Import) -> str | None:
    leaf = next((f for f in LEAVES if is_within(imp.module, f)), None)
    if leaf and is_within(imp.target, TOP) and rank(imp.target) != 0:
        return f"{leaf} is a leaf and imports only rank-0 modules from sim"
    return None


def rank_reason(imp: Import) -> str | None:
    mine, theirs = rank(imp.module), rank(imp.target)
    if is_within(imp.target, TOP) and mine is not None and theirs is not None and theirs > mine:
        return f"rank {mine} ({family(imp.module)}) must not import rank {theirs} ({family(imp.target)})"
    return None


def edge_reason(imp: Import, known: set[str]) -> str | None:
    """Why this import breaks the layer order, naming the most specific rule; None if fine."""
    if imp.target.startswith("."):
        return "relative import climbs above the sim package"
    if is_within(imp.target, TOP) and imp.target not in known:
        return "no such module in this tree"
    if reason := forbidden_reason(imp):
        return reason
    if is_within(imp.target, SIMPY) and not is_within(imp.module, ENGINE):
        return f"only {ENGINE} may import {SIMPY}"
    return leaf_reason(imp) or rank_reason(imp)


def scan_problems(modules: Iterable[str], at_least: int, must_have: Iterable[str]) -> list[str]:
    names = set(modules)
    too_few = len(names) < at_least
    problems = [f"scanned {len(names)} modules under sim/, expected at least {at_least}"] if too_few else []
    return problems + [f"{m} was not scanned" for m in must_have if m not in names]


def edge_violations(root: Path) -> list[tuple[Import, str]]:
    modules = list_modules(root)
    known = known_names(modules)
    found = []
    for module, path in modules.items():
        for imp in module_imports(module, path, known):
            if reason := edge_reason(imp, known):
                found.append((imp, reason))
    return found


def violations(root: Path, *, at_least: int = 1, must_have: Iterable[str] = (),
               allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """Every breach of the layer order in the tree at `root`, as readable lines.

    An empty or missing `sim/` is itself a problem, so the guard cannot pass by scanning nothing.
    """
    modules = list_modules(root)
    problems = scan_problems(modules, at_least, must_have)
    problems += [f"{m} has no rank: add it to RANKS" for m in modules if family(m) is None]
    problems += [f"{imp.module} imports {imp.target} (line {imp.line}): {reason}"
                 for imp, reason in edge_violations(root)
                 if (imp.module, imp.target) not in allowed]
    return problems


# --- the real tree --------------------------------------------------------------------------

def test_real_tree_follows_the_layer_order() -> None:
    assert violations(ROOT, at_least=REAL_AT_LEAST, must_have=REAL_MUST_HAVE, allowed=ALLOWED) == []


def test_allow_list_is_still_needed() -> None:
    # Once sim/ is fixed, the matching ALLOWED entry must go, or it would hide a regression.
    breaches = {(imp.module, imp.target) for imp, _ in edge_violations(ROOT)}
    assert sorted(ALLOWED - breaches) == []


def test_rank_table_keeps_the_records_leaf_at_the_bottom() -> None:
    assert all(RANKS[leaf] == 0 for leaf in LEAVES)


# --- the checker on small trees (guards that can fail) ---------------------------------------

GOOD_TREE: dict[str, str] = {
    "sim/__init__.py": "from sim.engine import simulate\nfrom sim.runner import run\n",
    "sim/units.py": "import math\n",
    "sim/records.py": "from sim.units import SECOND\n",
    "sim/engine/__init__.py": "from .simulation import simulate\n",
    "sim/engine/simulation.py": "import simpy\nfrom ..metrics import capacity\nfrom . import core\n",
    "sim/engine/core.py": "from sim import records\nfrom simpy.resources import resource\n",
    "sim/metrics/__init__.py": "",
    "sim/metrics/capacity.py": (
        "from typing import TYPE_CHECKING\nfrom sim.records import Record\n"
        "if TYPE_CHECKING:\n    from sim.units import SECOND\n"),
    "sim/policies/__init__.py": "from sim.policies.routing import route\n",
    "sim/policies/routing.py": "def route():\n    from ..metrics.capacity import x\n",
    "sim/runner.py": "import sim.engine as engine\nfrom sim.engine import simulate\n",
    "sim/report/__init__.py": "from sim.metrics import capacity\n",
}


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def with_file(tmp_path: Path, rel: str, text: str) -> list[str]:
    return violations(make_tree(tmp_path, {**GOOD_TREE, rel: text}))


def test_a_good_small_tree_has_no_violations(tmp_path: Path) -> None:
    assert violations(make_tree(tmp_path, GOOD_TREE)) == []


def test_imports_resolve_to_absolute_names(tmp_path: Path) -> None:
    root = make_tree(tmp_path, GOOD_TREE)
    modules = list_modules(root)
    known = known_names(modules)
    targets = {m: [i.target for i in module_imports(m, p, known)] for m, p in modules.items()}
    assert targets["sim.engine"] == ["sim.engine.simulation"]
    assert targets["sim.engine.simulation"] == ["simpy", "sim.metrics.capacity", "sim.engine.core"]
    assert targets["sim.engine.core"] == ["sim.records", "simpy.resources"]
    assert targets["sim.metrics.capacity"] == ["typing", "sim.records", "sim.units"]
    assert targets["sim.policies.routing"] == ["sim.metrics.capacity"]
    assert targets["sim.runner"] == ["sim.engine", "sim.engine"]


def test_relative_import_upward_is_caught(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/metrics/x.py", "from ..engine import core\n") == [
        "sim.metrics.x imports sim.engine.core (line 1): sim.metrics never imports sim.engine"]


def test_relative_import_in_a_package_init_is_caught(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/metrics/__init__.py", "from .. import engine\n") == [
        "sim.metrics imports sim.engine (line 1): sim.metrics never imports sim.engine"]


def test_relative_import_above_sim_is_caught(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/units.py", "from ... import outside\n") == [
        "sim.units imports ... (line 1): relative import climbs above the sim package"]


def test_submodule_imported_as_a_name_is_caught(tmp_path: Path) -> None:
    code = "def decide():\n    from sim import engine\n"
    assert with_file(tmp_path, "sim/policies/greedy.py", code) == [
        "sim.policies.greedy imports sim.engine (line 2): sim.policies never imports sim.engine"]


def test_simpy_outside_the_engine_is_caught(tmp_path: Path) -> None:
    assert with_file(tmp_path / "a", "sim/workload/arrivals.py", "import simpy.events as ev\n") == [
        "sim.workload.arrivals imports simpy.events (line 1): only sim.engine may import simpy"]
    assert with_file(tmp_path / "b", "sim/metrics/x.py", "from simpy import Environment\n") == [
        "sim.metrics.x imports simpy (line 1): sim.metrics never imports simpy"]


def test_report_importing_runner_or_experiment_is_caught(tmp_path: Path) -> None:
    files = {"sim/experiment/__init__.py": "", "sim/experiment/sweep.py": "",
             "sim/report/x.py": "import sim.runner\nfrom sim.experiment.sweep import sweep\n"}
    assert violations(make_tree(tmp_path, {**GOOD_TREE, **files})) == [
        "sim.report.x imports sim.runner (line 1): sim.report never imports sim.runner",
        "sim.report.x imports sim.experiment.sweep (line 2): sim.report never imports sim.experiment"]


def test_import_under_type_checking_counts(tmp_path: Path) -> None:
    code = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sim.runner import Run\n"
    assert with_file(tmp_path, "sim/engine/jobs.py", code) == [
        "sim.engine.jobs imports sim.runner (line 3): rank 5 (sim.engine) must not import rank 6 (sim.runner)"]


def test_literal_import_module_counts(tmp_path: Path) -> None:
    code = "import importlib\nmod = importlib.import_module('sim.runner')\n"
    assert with_file(tmp_path, "sim/units.py", code) == [
        "sim.units imports sim.runner (line 2): rank 0 (sim.units) must not import rank 6 (sim.runner)"]


def test_a_lazy_package_home_counts(tmp_path: Path) -> None:
    # sim.lazy.lazy_attributes imports a table's homes on first use: a home is an import.
    code = ("from sim.lazy import lazy_attributes\n_HOMES = {'build': 'sim.report.build',\n"
            "          'execute': 'sim.runner'}\n__getattr__, __dir__ = lazy_attributes(__name__, _HOMES)\n")
    files = {"sim/lazy.py": "", "sim/report/build.py": "", "sim/report/__init__.py": code}
    assert violations(make_tree(tmp_path, {**GOOD_TREE, **files})) == [
        "sim.report imports sim.runner (line 3): sim.report never imports sim.runner"]


def test_string_literals_elsewhere_are_not_imports(tmp_path: Path) -> None:
    code = "NAME = 'sim.runner'\n"  # not a lazy package: a string is only a string
    assert with_file(tmp_path, "sim/report/x.py", code) == []


def test_one_statement_importing_two_names_is_one_violation(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/units.py", "from sim.runner import (a, b)\n") == [
        "sim.units imports sim.runner (line 1): rank 0 (sim.units) must not import rank 6 (sim.runner)"]


def test_importing_the_sim_package_from_below_is_caught(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/units.py", "from sim import MeridianError\n") == [
        "sim.units imports sim (line 1): rank 0 (sim.units) must not import rank 10 (sim)"]


def test_records_leaf_imports_only_rank_zero(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/records.py", "from sim.metrics import capacity\n") == [
        ("sim.records imports sim.metrics.capacity (line 1): "
         "sim.records is a leaf and imports only rank-0 modules from sim")]


def test_unranked_module_is_caught(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/newthing.py", "from sim.units import SECOND\n") == [
        "sim.newthing has no rank: add it to RANKS"]


def test_import_of_a_missing_sim_module_is_caught(tmp_path: Path) -> None:
    assert with_file(tmp_path, "sim/runner.py", "import sim.nothere\nfrom sim.engine.gone import x\n") == [
        "sim.runner imports sim.nothere (line 1): no such module in this tree",
        "sim.runner imports sim.engine.gone (line 2): no such module in this tree"]


def test_an_empty_tree_is_caught(tmp_path: Path) -> None:
    assert violations(tmp_path) == ["scanned 0 modules under sim/, expected at least 1"]
    (tmp_path / "sim").mkdir()
    assert violations(tmp_path, at_least=REAL_AT_LEAST, must_have=("sim.runner",)) == [
        f"scanned 0 modules under sim/, expected at least {REAL_AT_LEAST}", "sim.runner was not scanned"]


def test_the_small_good_tree_is_not_the_real_tree(tmp_path: Path) -> None:
    files = {k: v for k, v in GOOD_TREE.items() if k != "sim/runner.py"}
    assert violations(make_tree(tmp_path, files), at_least=REAL_AT_LEAST, must_have=REAL_MUST_HAVE) == [
        f"scanned 11 modules under sim/, expected at least {REAL_AT_LEAST}", "sim.runner was not scanned",
        "sim imports sim.runner (line 2): no such module in this tree"]


def test_allow_list_is_narrow(tmp_path: Path) -> None:
    # An allowed (importer, target) pair excuses that one edge, not the importer's others.
    allowed = frozenset({("sim.report.kpis", "sim.experiment.stats")})
    files = {"sim/experiment/__init__.py": "", "sim/experiment/stats.py": "",
             "sim/report/kpis.py": "from sim.experiment.stats import t\nimport sim.runner\n"}
    assert violations(make_tree(tmp_path, {**GOOD_TREE, **files}), allowed=allowed) == [
        "sim.report.kpis imports sim.runner (line 2): sim.report never imports sim.runner"]


def test_a_file_that_does_not_parse_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(SyntaxError):
        with_file(tmp_path, "sim/units.py", "import (\n")
