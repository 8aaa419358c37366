"""The dependency direction of STYLE.md, enforced by parsing every import.

Lower layers never import higher ones; policies never import the engine or SimPy; metrics
and report never import the engine; SimPy is imported only in sim/engine.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Rank of each module family; an import must go to an equal or lower rank.
RANKS = {
    "sim.units": 0, "sim.errors": 0, "sim.fileio": 0, "sim.streams": 0,
    "sim.world.catalogue": 1, "sim.world.geo": 1,
    "sim.scenario": 2,
    "sim.world": 3, "sim.models": 3,
    "sim.workload": 4, "sim.policies": 4, "sim.metrics": 4,
    "sim.engine": 5,
    "sim.runner": 6,
    "sim.experiment": 7,
    "sim.report": 8,
    "sim": 9,
}
FORBIDDEN = {
    "sim.policies": ("sim.engine", "simpy"),
    "sim.metrics": ("sim.engine", "simpy"),
    "sim.report": ("sim.engine", "simpy"),
}


def family(module: str) -> str:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANKS:
            return ".".join(parts[:n])
    return module


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def test_layers_point_downwards():
    violations = []
    for path in sorted((ROOT / "sim").rglob("*.py")):
        me = module_name(path)
        mine = family(me)
        for target in imports(path):
            if target.split(".")[0] == "simpy" and not me.startswith("sim.engine"):
                violations.append(f"{me} imports simpy (only sim.engine may)")
            for banned_from, banned in FORBIDDEN.items():
                if mine == banned_from and any(target == b or target.startswith(b + ".") for b in banned):
                    violations.append(f"{me} imports {target}")
            if target.startswith("sim.") and me != "sim":
                if RANKS[family(target)] > RANKS[mine]:
                    violations.append(f"{me} (rank {RANKS[mine]}) imports {target} (rank {RANKS[family(target)]})")
    assert violations == []


def test_rule_catches_a_violation(tmp_path):
    # The checker itself must be able to fail.
    bad = tmp_path / "bad.py"
    bad.write_text("import simpy\nfrom sim.engine import simulate\n")
    assert imports(bad) == ["simpy", "sim.engine"]
    assert RANKS[family("sim.engine.core")] > RANKS[family("sim.metrics.capacity")]
