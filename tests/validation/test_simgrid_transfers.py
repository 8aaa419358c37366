"""Meridian's flow model against SimGrid 4.1, copy by copy, on 1,000 copies between six regions.

``scenarios/validation/transfers_1000.yaml`` is written the natural way (one node per
region, links with their RTT and bandwidth, copies from a trace). SimGrid simulated the same
case (``tests/validation/simgrid_reference.py``, which reads only the scenario files) with
its ``raw`` and ``LV08`` models, on split-duplex and on shared links; its completion times
are the goldens in ``tests/validation/golden/``, so these tests do not need SimGrid. Every
copy must end within 1 ns of SimGrid's.

``python -m tests.validation.test_simgrid_transfers`` prints the table VALIDATION.md quotes.
"""
import csv
from pathlib import Path

import numpy as np
import pytest

from sim.engine import simulate
from sim.records import TransferRecord
from sim.scenario import load_scenario
from sim.streams import Streams
from sim.world import build_world
from tests.conftest import SCENARIOS, run_cli

GOLDEN = Path(__file__).parent / "golden"
CASE = SCENARIOS / "validation" / "transfers_1000.yaml"
VARIANTS = [("raw", "full"), ("lv08", "full"), ("raw", "half"), ("lv08", "half")]


def golden(model: str, duplex: str) -> tuple[np.ndarray, np.ndarray]:
    rows = list(csv.DictReader(open(GOLDEN / f"simgrid_transfers_1000_{model}_{duplex}.csv")))
    return np.array([float(r["start_s"]) for r in rows]), np.array([float(r["end_s"]) for r in rows])


def meridian(model: str, duplex: str) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every copy, in the trace's order (copies start in that order)."""
    scenario = load_scenario(CASE, overrides=[f"network.model={model}", f"network.duplex={duplex}"]).scenario
    log: list = []
    simulate(scenario, build_world(scenario), [log.append], Streams(scenario.seed), CASE.parent)
    records = sorted((r for r in log if isinstance(r, TransferRecord)), key=lambda r: r.transfer)
    return np.array([r.start_s for r in records]), np.array([r.end_s for r in records])


@pytest.mark.parametrize("model,duplex", VARIANTS)
def test_every_copy_ends_when_simgrid_says(model, duplex):
    start, end = meridian(model, duplex)
    sg_start, sg_end = golden(model, duplex)
    assert len(end) == len(sg_end) == 1000
    np.testing.assert_allclose(start, sg_start, rtol=0, atol=1e-9)
    worst = np.abs(end - sg_end).max()
    assert worst < 1e-9, (model, duplex, worst)


def test_transfers_csv_carries_the_times_to_the_nanosecond(tmp_path):
    # What a user compares is the run folder's transfers.csv, not the engine's records: its
    # times must not be rounded away from SimGrid's (10 significant digits lost 5e-8 s).
    out = tmp_path / "run"
    assert run_cli("run", str(CASE), "--out", str(out), "--no-charts").code == 0
    rows = sorted(csv.DictReader(open(out / "transfers.csv")), key=lambda r: int(r["transfer"]))
    _, sg_end = golden("raw", "full")
    end = np.array([float(r["end_s"]) for r in rows])
    assert len(end) == 1000 and np.abs(end - sg_end).max() < 1e-9
    assert all(r["bytes"].isdigit() for r in rows)  # whole bytes, not 2.568496e+09


def test_the_models_differ_where_they_should():
    # Guards of the comparison itself: shared links (the old default) and raw against
    # LV08 each give completion times far from the other variant's goldens.
    _, full = golden("raw", "full")
    _, half = golden("raw", "half")
    _, lv08 = golden("lv08", "full")
    assert half.max() > 1.9 * full.max() and lv08.max() > 1.5 * full.max()


def main() -> None:
    print("| model | links | copies | makespan SimGrid (s) | makespan Meridian (s) | mean copy time SimGrid (s) "
          "| worst difference, one copy (s) |")
    print("|---|---|---|---|---|---|---|")
    for model, duplex in VARIANTS:
        start, end = meridian(model, duplex)
        sg_start, sg_end = golden(model, duplex)
        print(f"| {model} | {duplex} duplex | {len(end)} | {sg_end.max():.6f} | {end.max():.6f} | "
              f"{(sg_end - sg_start).mean():.4f} | {np.abs(end - sg_end).max():.1e} |")


if __name__ == "__main__":
    main()
