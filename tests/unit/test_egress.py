"""Egress prices: table lookups against the shared green-dcc matrices, direction, the
regeneration of egress.csv, and the jurisdiction fallbacks."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sim.world import egress
from sim.world.egress import egress_usd_per_gb

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / egress.AWS_PRICES).is_file(),
                                  reason=f"shared public data not found at {SHARED}")


def shared_price(filename: str, src: str, dst: str) -> float:
    """Read one cell of a shared price matrix directly (row = source, column = destination)."""
    with (SHARED / filename).open(newline="", encoding="utf-8") as f:
        header, *rows = csv.reader(f)
    row = next(r for r in rows if r[0] == src)
    return float(row[header.index(dst)])


@needs_shared
@pytest.mark.parametrize("src, dst", [("us-east-1", "us-east-2"), ("us-east-1", "ap-northeast-1"),
                                      ("ap-northeast-1", "us-east-1"), ("af-south-1", "eu-west-1"),
                                      ("sa-east-1", "ap-south-1")])
def test_aws_prices_match_the_shared_matrix(src, dst):
    assert egress_usd_per_gb(src, dst) == shared_price(egress.AWS_PRICES, src, dst)


@needs_shared
@pytest.mark.parametrize("src, dst, src_name, dst_name", [
    ("westeurope", "northeurope", "West Europe", "North Europe"),
    ("eastus", "southcentralus", "East US", "South Central US"),
    ("brazilsouth", "eastus", "Brazil South", "East US"),
    ("francecentral", "westeurope", "France Central", "West Europe"),
])
def test_azure_prices_match_the_shared_matrix_by_display_name(src, dst, src_name, dst_name):
    assert egress_usd_per_gb(src, dst) == shared_price(egress.AZURE_PRICES, src_name, dst_name)


def test_prices_are_directional():
    # Billed at the source: leaving Tokyo costs more than leaving Virginia.
    assert egress_usd_per_gb("ap-northeast-1", "us-east-1") == 0.09
    assert egress_usd_per_gb("us-east-1", "ap-northeast-1") == 0.02
    assert egress_usd_per_gb("brazilsouth", "eastus") == 0.16
    assert egress_usd_per_gb("eastus", "brazilsouth") == 0.05


def test_same_region_is_free():
    assert egress_usd_per_gb("eastus", "eastus") == 0.0
    assert egress_usd_per_gb("my-own-dc", "my-own-dc") == 0.0


def test_table_keeps_only_catalogue_regions_of_one_provider():
    table = egress.egress_table()
    assert ("us-east-1", "us-east-1-dwf-1") not in table  # AWS local zone, not a catalogue region
    assert not any(src == dst for src, dst in table)
    assert len(table) == 15 * 14 + 18 * 17  # Azure and AWS catalogue regions in the matrices


def test_fallbacks_follow_jurisdictions():
    # Cross-provider, same country (US): the same-jurisdiction median.
    assert egress_usd_per_gb("eastus", "us-east-1") == egress.SAME_JURISDICTION_USD_PER_GB == 0.02
    # Catalogue region missing from the price matrix (westus2), different jurisdictions.
    assert egress_usd_per_gb("westus2", "westeurope") == egress.CROSS_JURISDICTION_USD_PER_GB == 0.08
    # Scenario-defined regions: the caller's jurisdictions decide; none known -> all-pairs median.
    assert egress_usd_per_gb("dc-a", "dc-b", "EU", "EU") == 0.02
    assert egress_usd_per_gb("dc-a", "dc-b", "EU", "US") == 0.08
    assert egress_usd_per_gb("dc-a", "dc-b") == egress.UNKNOWN_JURISDICTION_USD_PER_GB == 0.08


def test_caller_jurisdiction_overrides_the_catalogue_for_unpriced_pairs():
    assert egress_usd_per_gb("westus2", "westeurope", "EU", "EU") == 0.02


@needs_shared
def test_egress_csv_regenerates_byte_for_byte(tmp_path, capsys):
    assert egress.main([str(SHARED), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "egress.csv").read_bytes() == (egress.DATA_DIR / "egress.csv").read_bytes()
    assert "516 directed pairs" in capsys.readouterr().out


@needs_shared
def test_fallback_constants_are_the_medians_of_the_table():
    medians = egress.fallback_medians(egress.egress_rows(SHARED))
    assert medians["same"][0] == egress.SAME_JURISDICTION_USD_PER_GB
    assert medians["cross"][0] == egress.CROSS_JURISDICTION_USD_PER_GB
    assert medians["all"][0] == egress.UNKNOWN_JURISDICTION_USD_PER_GB
    assert {k: n for k, (_, n) in medians.items()} == {"same": 36, "cross": 480, "all": 516}


def test_shipped_table_opens_with_its_source():
    first = (egress.DATA_DIR / "egress.csv").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# source: greendcc_azure_transmission_cost_usd_per_gb.csv")
