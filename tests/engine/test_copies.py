"""Plain copies (the transfers section) by hand: directed links, priorities, streams, the
trace format, residency and the border audit, link cuts in flight, and input errors."""
import csv
import json

import pytest

from tests.conftest import run_cli

TWO = """\
name: copies
seed: 3
duration: 2h
regions:
  - {name: a, lat: 0, lon: 0, jurisdiction: US, pools: [{name: p, gpu: H100, replicas: 1}]}
  - {name: b, lat: 0, lon: 10, jurisdiction: EU, pools: [{name: p, gpu: H100, replicas: 1}]}
links:
  - {a: a, b: b, rtt_ms: 100, bandwidth_gbps: 8}
network: {egress_usd_per_gb: 0.02}
transfers:
  copies:
    - {name: out, src: a, dst: b, size_gb: 100, at: [1h]}
    - {name: back, src: b, dst: a, size_gb: 100, at: [1h]}
"""


def run(tmp_path, write_yaml, text, *sets):
    out = tmp_path / "run"
    result = run_cli("run", str(write_yaml(text)), "--out", str(out), *[a for s in sets for a in ("--set", s)])
    assert result.code == 0, result.err
    return out, json.load(open(out / "summary.json"))


def rows(out, name="transfers.csv"):
    return list(csv.DictReader(open(out / name)))


@pytest.mark.parametrize("duplex,seconds", [("full", 100.05), ("half", 200.05)])
def test_opposite_copies_share_a_link_only_when_it_is_half_duplex(tmp_path, write_yaml, duplex, seconds):
    # 100 GB each way over 8 Gbit/s, 50 ms one way: full duplex, each direction carries
    # 8 Gbit/s: 0.05 + 100 s; half duplex, they split 8 Gbit/s: 0.05 + 200 s.
    out, summary = run(tmp_path, write_yaml, TWO, f"network.duplex={duplex}")
    table = rows(out)
    assert [(r["dataset"], r["src"], r["dst"], r["job"]) for r in table] == [("copy:out", "a", "b", "-1"),
                                                                            ("copy:back", "b", "a", "-1")]
    assert [float(r["end_s"]) - float(r["start_s"]) for r in table] == pytest.approx([seconds] * 2, abs=1e-9)
    network = summary["network"]
    assert network["transfers"] == 2 and network["transfer_cost_usd"] == pytest.approx(4.0)
    # The border audit: each copy crossed US-EU once.
    assert [(r["src"], r["dst"], r["src_jurisdiction"]) for r in rows(out, "border_crossings.csv")] == [
        ("a", "b", "US"), ("b", "a", "EU")]


def test_copies_still_on_their_way_when_the_run_ends_are_counted(tmp_path, write_yaml):
    # 100 GB at 8 Gbit/s takes 100.05 s: started 60 s before the end, neither lands; no
    # transfers.csv row, but the summary counts both and their bytes.
    _, summary = run(tmp_path, write_yaml, TWO, "duration=61m")
    network = summary["network"]
    assert network["transfers"] == 0
    assert (network["unfinished_transfers"], network["unfinished_bytes"]) == (2, 200e9)
    (tmp_path / "whole").mkdir()
    _, summary = run(tmp_path / "whole", write_yaml, TWO)
    assert (summary["network"]["unfinished_transfers"], summary["network"]["unfinished_bytes"]) == (0, 0.0)


def test_a_link_may_be_half_duplex_by_itself(tmp_path, write_yaml):
    text = TWO.replace("bandwidth_gbps: 8}", "bandwidth_gbps: 8, duplex: half}")
    out, _ = run(tmp_path, write_yaml, text)
    assert [float(r["end_s"]) - float(r["start_s"]) for r in rows(out)] == pytest.approx([200.05] * 2)


def test_a_higher_priority_copy_goes_first(tmp_path, write_yaml):
    # Both a -> b at 1 h; the priority-1 copy takes the whole 8 Gbit/s (100.05 s), then the
    # other gets it: its 100 GB finish 100 s later (it started sending with the first).
    text = TWO.replace("{name: back, src: b, dst: a, size_gb: 100, at: [1h]}",
                       "{name: urgent, src: a, dst: b, size_gb: 100, at: [1h], priority: 1}")
    out, _ = run(tmp_path, write_yaml, text)
    ends = {r["dataset"]: float(r["end_s"]) - 3600 for r in rows(out)}
    assert ends == pytest.approx({"copy:urgent": 100.05, "copy:out": 200.05})
    assert {r["dataset"]: int(r["priority"]) for r in rows(out)} == {"copy:urgent": 1, "copy:out": 0}


def test_a_poisson_stream_of_copies(tmp_path, write_yaml):
    # 30 copies an hour of 1 GB for 2 h: about 60, at most max_copies.
    text = TWO.replace("{name: back, src: b, dst: a, size_gb: 100, at: [1h]}",
                       "{name: logs, src: b, dst: a, size_gb: 1, rate_per_h: 30}")
    out, _ = run(tmp_path, write_yaml, text)
    logs = [r for r in rows(out) if r["dataset"] == "copy:logs"]
    assert 40 <= len(logs) <= 80
    out2, _ = run(tmp_path / "m", write_yaml, text.replace("rate_per_h: 30}", "rate_per_h: 30, max_copies: 5}"))
    assert len([r for r in rows(out2) if r["dataset"] == "copy:logs"]) == 5


def test_the_copy_trace_format(tmp_path, write_yaml):
    (tmp_path / "copies.csv").write_text("time_s,src,dst,size_gb,priority,dataset\n"
                                         "10,a,b,8,0,\n20,b,a,1,2,corpus\n")
    text = TWO.split("transfers:")[0] + """datasets: [{name: corpus, size_gb: 1, home: b}]
transfers:
  trace: copies.csv
"""
    out, _ = run(tmp_path, write_yaml, text)
    table = rows(out)
    assert [(r["dataset"], float(r["start_s"]), float(r["end_s"])) for r in table] == pytest.approx(
        [("copy:trace", 10.0, 10.0 + 0.05 + 8), ("corpus", 20.0, 20.0 + 0.05 + 1)])


RESIDENT = TWO.split("transfers:")[0] + """datasets:
  - {name: records, size_gb: 10, home: a, residency: {allowed_jurisdictions: [US], mode: MODE}}
transfers:
  copies: [{name: leak, src: a, dst: b, dataset: records, at: [1h]}]
"""


def test_residency_rules_apply_to_copies_of_a_dataset(tmp_path, write_yaml):
    out, summary = run(tmp_path, write_yaml, RESIDENT.replace("MODE", "soft"))
    assert summary["network"]["residency_violations"] == 1
    assert [(r["dataset"], float(r["bytes"])) for r in rows(out)] == [("records", 10e9)]
    result = run_cli("validate", str(write_yaml(RESIDENT.replace("MODE", "hard"), "h.yaml")))
    assert result.code == 2
    assert "transfers.copies[0].dst: dataset 'records' may not be stored there (hard residency rule) (got 'b')" \
        in result.err


CUT = """\
name: cut
duration: 2h
regions:
  - {name: a, lat: 0, lon: 0, pools: [{name: p, gpu: H100, replicas: 1}]}
  - {name: b, lat: 0, lon: 10, pools: [{name: p, gpu: H100, replicas: 1}]}
  - {name: c, lat: 0, lon: 5}
links:
  - {a: a, b: b, rtt_ms: 100, bandwidth_gbps: 8}
  - {a: a, b: c, rtt_ms: 100, bandwidth_gbps: 4}
  - {a: c, b: b, rtt_ms: 100, bandwidth_gbps: 4}
network: {on_cut: MODE}
transfers:
  copies: [{name: big, src: a, dst: b, size_gb: 100, at: [0s]}]
failures:
  links: [{a: a, b: b, at: 50.05s, duration: 1h}]
"""


@pytest.mark.parametrize("mode,end", [
    # 50 GB sent over a-b by 50.05 s; the cut moves the copy to a-c-b (4 Gbit/s, 100 ms one
    # way): resume sends the other 50 GB: 50.05 + 0.1 + 100 s; restart sends all 100 GB.
    ("resume", 50.05 + 0.1 + 100.0), ("restart", 50.05 + 0.1 + 200.0)])
def test_a_cut_interrupts_a_copy_which_resumes_or_restarts_on_a_new_path(tmp_path, write_yaml, mode, end):
    out, _ = run(tmp_path, write_yaml, CUT.replace("MODE", mode))
    (row,) = rows(out)
    assert float(row["end_s"]) == pytest.approx(end, abs=1e-6)
    assert row["route"] == "a-c-b" and int(row["interruptions"]) == 1


def test_a_copy_with_no_path_waits_for_one(tmp_path, write_yaml):
    # Without the detour the copy waits for a-b to return at 50.05 s + 1 h, then resumes.
    text = CUT.replace("MODE", "resume").replace("  - {a: a, b: c, rtt_ms: 100, bandwidth_gbps: 4}\n", "")
    out, _ = run(tmp_path, write_yaml, text)
    (row,) = rows(out)
    assert float(row["end_s"]) == pytest.approx(50.05 + 3600 + 0.05 + 50.0, abs=1e-6)
    assert row["route"] == "a-b"


def test_copy_input_errors(tmp_path, write_yaml):
    bad = TWO.replace("{name: back, src: b, dst: a, size_gb: 100, at: [1h]}", "{name: back, src: zz, dst: a}")
    result = run_cli("validate", str(write_yaml(bad)))
    assert result.code == 2
    assert "transfers.copies[1].src: unknown region or region/host (known: a, b) (got 'zz')" in result.err
    assert "transfers.copies[1]: give size_gb (or the dataset it copies)" in result.err
    assert "transfers.copies[1]: give at (copies at given times) or rate_per_h (a stream)" in result.err
    (tmp_path / "bad.csv").write_text("time_s,src,dst,size_gb,priority,dataset\n1,a,zz,1,0,\n2,a,b,-1,0,\nx\n")
    trace = TWO.split("transfers:")[0] + "transfers: {trace: bad.csv}\n"
    result = run_cli("validate", str(write_yaml(trace, "t.yaml")))
    assert result.code == 2 and "Traceback" not in result.err
    assert "bad.csv:2: dst: unknown region or region/host (known: a, b) (got 'zz')" in result.err
    assert "bad.csv:3: size_gb: must be a number > 0 (got '-1')" in result.err
    assert "bad.csv:4: <top>: has 1 fields, expected 6" in result.err
    (tmp_path / "bad.csv").write_text("time_s,src,dst,bytes\n1,a,b,1\n")
    result = run_cli("validate", str(write_yaml(trace, "t.yaml")))
    assert result.code == 2
    assert ("bad.csv:1: <top>: header must be time_s,src,dst,size_gb,priority,dataset (in any order; priority "
            "and dataset may be left out) (got 'time_s,src,dst,bytes')") in result.err


def test_a_copy_trace_may_order_its_columns_and_leave_out_priority_and_dataset(tmp_path, write_yaml):
    (tmp_path / "copies.csv").write_text("src,dst,size_gb,time_s\na,b,8,10\nb,a,1,20\n")
    out, _ = run(tmp_path, write_yaml, TWO.split("transfers:")[0] + "transfers: {trace: copies.csv}\n")
    assert [(r["dataset"], r["priority"], float(r["start_s"]), float(r["end_s"])) for r in rows(out)] == \
        pytest.approx([("copy:trace", "0", 10.0, 10.0 + 0.05 + 8), ("copy:trace", "0", 20.0, 20.0 + 0.05 + 1)])


HOSTS = """\
name: hosts
duration: 1h
regions:
  - name: a
    lat: 0
    lon: 0
    intra_rtt_ms: 2
    pools: [{name: p, gpu: H100, replicas: 1}]
    hosts: [{name: h1, nic_gbps: 10}, {name: h2, nic_gbps: 25}]
  - {name: b, lat: 0, lon: 10, pools: [{name: p, gpu: H100, replicas: 1}]}
links:
  - {a: a, b: b, rtt_ms: 100, bandwidth_gbps: 100}
transfers:
  copies:
COPIES"""


def host_copies(tmp_path, write_yaml, copies):
    out, _ = run(tmp_path, write_yaml, HOSTS.replace("COPIES", copies))
    return {r["dataset"]: r for r in rows(out)}


def test_a_copy_between_hosts_of_a_region_takes_time(tmp_path, write_yaml):
    # h1 -> h2 inside a: 10 GB through h1's 10 Gbit/s NIC (h2's 25 does not limit); each
    # NIC is half a's 2 ms RTT away, so the copy's RTT is 2 ms and it starts after 1 ms:
    # 0.001 + 8 s. A region-level copy inside a is free.
    table = host_copies(tmp_path, write_yaml, "    - {name: local, src: a/h1, dst: a/h2, size_gb: 10, at: [0s]}\n"
                                              "    - {name: free, src: a, dst: a, size_gb: 10, at: [0s]}\n")
    local = table["copy:local"]
    assert (local["src"], local["dst"], local["route"]) == ("a/h1", "a/h2", "a")
    assert float(local["end_s"]) == pytest.approx(0.001 + 8.0, abs=1e-9)
    assert float(table["copy:free"]["end_s"]) == 0.0 and float(local["cost_usd"]) == 0.0


def test_a_copy_landing_as_another_starts_is_recorded(tmp_path, write_yaml):
    # first: 1 GB at 8 Gbit/s after 10 ms, lands at 1.01 s, the instant second starts (the
    # start used to move the flows' clock past the landing and drop it: no row, and a job
    # waiting for such a copy would wait for ever).
    text = TWO.replace("size_gb: 100, at: [1h]}\n    - {name: back, src: b, dst: a, size_gb: 100, at: [1h]}",
                       "size_gb: 1, at: [0s]}\n    - {name: back, src: b, dst: a, size_gb: 1, at: [1.1s]}")
    out, summary = run(tmp_path, write_yaml, text.replace("rtt_ms: 100", "rtt_ms: 200"))
    assert [(r["dataset"], float(r["end_s"])) for r in rows(out)] == [("copy:out", pytest.approx(1.1)),
                                                                      ("copy:back", pytest.approx(2.2))]
    assert summary["network"]["transfers"] == 2


def test_copies_inside_a_region_are_not_bytes_across_regions(tmp_path, write_yaml):
    # Three copies land (transfers.csv rows): 10 GB between hosts of a, 10 GB from a to a
    # (free), 2 GB from a's host h1 to b. Only the last leaves its region.
    out, summary = run(tmp_path, write_yaml, HOSTS.replace(
        "COPIES", "    - {name: local, src: a/h1, dst: a/h2, size_gb: 10, at: [0s]}\n"
                  "    - {name: free, src: a, dst: a, size_gb: 10, at: [0s]}\n"
                  "    - {name: away, src: a/h1, dst: b, size_gb: 2, at: [0s]}\n"))
    assert len(rows(out)) == summary["network"]["transfers"] == 3
    assert summary["network"]["bytes_cross_region"] == 2e9
    assert summary["network"]["bytes_by_link"] == {"a-b": 2e9}


def test_a_hosts_nic_is_shared_by_its_copies_and_bounds_a_wan_copy(tmp_path, write_yaml):
    # Two 10 GB copies out of h1 (10 Gbit/s) to b share its NIC: 5 Gbit/s each, 16 s; they
    # start after half their RTT, the link's 100 ms plus h1's half of a's 2 ms: 50.5 ms.
    table = host_copies(tmp_path, write_yaml, "    - {name: one, src: a/h1, dst: b, size_gb: 10, at: [0s]}\n"
                                              "    - {name: two, src: a/h1, dst: b, size_gb: 10, at: [0s]}\n")
    assert [float(table[k]["end_s"]) for k in ("copy:one", "copy:two")] == pytest.approx([0.0505 + 16.0] * 2)
    # From the region itself (no NIC named), the 100 Gbit/s link is the limit: 0.05 + 0.8 s.
    table = host_copies(tmp_path / "r", write_yaml, "    - {name: one, src: a, dst: b, size_gb: 10, at: [0s]}\n")
    assert float(table["copy:one"]["end_s"]) == pytest.approx(0.05 + 0.8)


def test_host_errors(tmp_path, write_yaml):
    text = HOSTS.replace("COPIES", "    - {name: x, src: a/h9, dst: b, size_gb: 1, at: [0s]}\n").replace(
        "{name: h2, nic_gbps: 25}", "{name: h1, nic_gbps: 25}")
    result = run_cli("validate", str(write_yaml(text)))
    assert result.code == 2
    assert "regions[0].hosts[1].name: duplicate host name in the region (got 'h1')" in result.err
    assert "transfers.copies[0].src: unknown region or region/host" in result.err
