"""Scenario keys of failures and staleness: mttf and its deprecated name mtbf, failure domains'
checks, per-region sync delays."""
import subprocess
import sys

import pytest

from sim.errors import ScenarioError
from sim.scenario import parse_scenario
from tests.conftest import ROOT

BASE = """\
name: keys
duration: 10h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 8, gpus_per_replica: 8}]}
failures:
"""


def test_mtbf_is_a_deprecated_name_of_mttf():
    with pytest.warns(FutureWarning, match=r"^<string>:6: failures.nodes\[0\].mtbf: mtbf is deprecated: it is the "
                      r"mean time to failure \(up time\).*write mttf \(got '5d'\)$"):
        old = parse_scenario(BASE + "  nodes: [{mtbf: 5d}]\n").scenario
    new = parse_scenario(BASE + "  nodes: [{mttf: 5d}]\n").scenario
    assert old == new and new.failures.nodes[0].mttf == 5 * 86400
    with pytest.raises(ScenarioError, match="give mttf \\(mtbf is its deprecated name\\), not both"):
        parse_scenario(BASE + "  nodes: [{mttf: 5d, mtbf: 4d}]\n")


@pytest.mark.parametrize("domain,message", [
    ("{name: r, members: {a/p: 0-3}}", "failures.domains[0]: give mttf (random events) or at (scheduled ones)"),
    ("{name: r, members: {a/q: all}, mttf: 1d}", "failures.domains[0].members.a/q: not a pool (region/pool)"),
    ("{name: r, members: {a/p: 3-9}, mttf: 1d}",
     "failures.domains[0].members.a/p: replica indices must lie in 0..7 (the pool has 8) (got '3-9')"),
    ("{name: r, members: {a/p: two}, mttf: 1d}",
     "failures.domains[0].members.a/p: must be a replica range like \"0-3\", one index, or all (got 'two')"),
    ("{name: r, members: {a/p: all}, at: [11h]}", "failures.domains[0].at[0]: must be before the end of the run"),
    ("{name: r, kind: cosmic, members: {a/p: all}, at: [1h]}", "failures.domains[0].kind"),
])
def test_domain_errors_name_the_field(domain, message):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + f"  domains: [{domain}]\n")
    assert message in str(caught.value)


def test_duplicate_domain_names_are_refused():
    text = BASE + "  domains: [{name: r, members: {a/p: 0}, at: [1h]}, {name: r, members: {a/p: 1}, at: [2h]}]\n"
    with pytest.raises(ScenarioError, match=r"failures.domains\[1\].name: duplicate domain name"):
        parse_scenario(text)


def test_sync_delay_by_region_names_known_regions():
    text = BASE.replace("failures:\n", "scheduler: {sync_delay_by_region: {zz: 5s}}\n")
    with pytest.raises(ScenarioError, match=r"scheduler.sync_delay_by_region.zz: unknown region \(known: a\)"):
        parse_scenario(text)
    ok = parse_scenario(BASE.replace("failures:\n", "scheduler: {sync_delay_by_region: {a: 5s}}\n")).scenario
    assert ok.scheduler.sync_delay_by_region == {"a": 5.0}


def test_the_command_line_warns_once_with_the_file_and_line(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(BASE + "  nodes: [{mttf: 2d}, {mtbf: 5d}]\n")
    result = subprocess.run([sys.executable, str(ROOT / "simulate.py"), "validate", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0
    assert result.stderr == (f"warning: {path}:6: failures.nodes[1].mtbf: mtbf is deprecated: it is the mean time to "
                          "failure (up time), not failure-to-failure (that is mttf + repair.mean); write mttf "
                          "(got '5d')\n")
