"""Unit tests of the world's geography and built-in catalogues (sim.world.geo, .catalogue)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim.world.catalogue import DATA_DIR, catalogue_region, catalogue_rtt_ms, gpu_catalogue, gpu_spec, region_catalogue
from sim.world.geo import (
    EARTH_RADIUS_KM,
    RTT_FIT_INTERCEPT_MS,
    RTT_FIT_MS_PER_KM,
    fit_rtt_model,
    fitted_rtt_ms,
    great_circle_km,
)

LONDON = (51.5074, -0.1278)
NEW_YORK = (40.7128, -74.0060)


# --- geo -------------------------------------------------------------------------------

def test_london_new_york_is_about_5570_km():
    assert great_circle_km(*LONDON, *NEW_YORK) == pytest.approx(5570, abs=10)


def test_great_circle_is_symmetric_and_zero_on_the_diagonal():
    assert great_circle_km(*LONDON, *NEW_YORK) == great_circle_km(*NEW_YORK, *LONDON)
    assert great_circle_km(*LONDON, *LONDON) == 0.0


def test_antipodes_are_half_a_circumference_apart():
    assert great_circle_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert great_circle_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_fitted_rtt_is_the_shipped_line():
    assert fitted_rtt_ms(0.0) == RTT_FIT_INTERCEPT_MS
    assert fitted_rtt_ms(1000.0) == pytest.approx(RTT_FIT_INTERCEPT_MS + 1000 * RTT_FIT_MS_PER_KM)
    assert fitted_rtt_ms(5570.0) == pytest.approx(109.96, abs=0.05)


def test_fitted_rtt_rejects_negative_distance():
    with pytest.raises(ValueError, match="distance_km must be >= 0, got -1"):
        fitted_rtt_ms(-1.0)


def test_fit_recovers_an_exact_line():
    km = np.array([100.0, 2000.0, 5000.0, 12000.0])
    fit = fit_rtt_model(km, 5.0 + 0.02 * km)
    assert (fit.intercept_ms, fit.ms_per_km) == pytest.approx((5.0, 0.02))
    assert fit.mae_ms == pytest.approx(0.0, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.n_pairs == 4
    assert fit.path_inflation == pytest.approx(2.0)


def test_fit_error_figures_on_a_hand_computed_case():
    # Points (0,0), (1,2), (2,0): the line is y = 2/3, residuals -2/3, 4/3, -2/3.
    fit = fit_rtt_model(np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 0.0]))
    assert (fit.intercept_ms, fit.ms_per_km) == pytest.approx((2 / 3, 0.0), abs=1e-12)
    assert fit.mae_ms == pytest.approx(8 / 9)
    assert fit.rmse_ms == pytest.approx(math.sqrt(8 / 9))
    assert fit.r2 == pytest.approx(0.0, abs=1e-12)


def test_fit_rejects_mismatched_input():
    with pytest.raises(ValueError, match="equal 1-D arrays"):
        fit_rtt_model(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0]))


# --- GPU catalogue --------------------------------------------------------------------

@pytest.mark.parametrize("name, tflops, memory_gb, bw_tb_s, tdp_w", [
    # Datasheet figures as listed in /work/shared/data/gpu_catalogue.csv (dense BF16).
    ("A100", 312, 80, 2.039, 400),
    ("H100", 989.4, 80, 3.35, 700),
    ("H100-PCIe", 756, 80, 2.0, 350),
    ("H200", 989, 141, 4.8, 700),
    ("B200", 2250, 180, 8.0, 1000),
    ("MI300X", 1307.4, 192, 5.3, 750),
])
def test_gpu_figures_match_the_datasheets(name, tflops, memory_gb, bw_tb_s, tdp_w):
    spec = gpu_spec(name)
    assert (spec.bf16_tflops, spec.memory_gb, spec.memory_bw_tb_s, spec.tdp_w) == (
        tflops, memory_gb, bw_tb_s, tdp_w)
    assert spec.name == name and spec.source


def test_short_names_mean_one_form_factor():
    assert gpu_spec("H100").form_factor == "SXM5"
    assert gpu_spec("A100").form_factor == "SXM4"
    assert gpu_spec("MI300X").form_factor == "OAM"


def test_aliases_resolve_to_the_same_spec():
    assert gpu_spec("A100-80GB") is gpu_spec("A100")
    assert gpu_spec("H100-80GB") is gpu_spec("H100")
    assert gpu_spec("H200-141GB") is gpu_spec("H200")


def test_unknown_gpu_lists_valid_names():
    with pytest.raises(KeyError, match=r"unknown GPU type 'V100' \(valid: A100, A100-80GB, .*MI300X"):
        gpu_spec("V100")


def test_gpu_catalogue_is_read_only():
    with pytest.raises(TypeError):
        gpu_catalogue()["X"] = gpu_spec("A100")  # type: ignore[index]


# --- region catalogue -----------------------------------------------------------------

def test_every_azure_and_aws_region_is_present():
    providers = [r.provider for r in region_catalogue().values()]
    assert (providers.count("azure"), providers.count("aws")) == (22, 32)


def test_azure_region_fields():
    r = catalogue_region("eastus")
    assert (r.provider, r.display_name, r.lat, r.lon) == ("azure", "East US", 37.3719, -79.8164)
    assert (r.utc_offset_h, r.jurisdiction, r.country) == (-5.0, "US", "US")
    assert r.carbon_g_per_kwh == pytest.approx(415.755)
    assert r.intra_rtt_ms is None  # Azure publishes no intra-region RTT


def test_aws_region_fields():
    r = catalogue_region("us-east-1")
    assert (r.provider, r.display_name, r.utc_offset_h, r.jurisdiction) == ("aws", "Ashburn", -5.0, "US")
    assert r.intra_rtt_ms == pytest.approx(5.349)


@pytest.mark.parametrize("name, jurisdiction", [
    ("westeurope", "EU"), ("swedencentral", "EU"), ("eu-south-1", "EU"), ("eu-west-1", "EU"),
    ("uksouth", "GB"), ("eu-central-2", "CH"), ("eastasia", "HK"), ("uaenorth", "AE"),
])
def test_jurisdiction_is_eu_for_member_states_else_iso(name, jurisdiction):
    assert catalogue_region(name).jurisdiction == jurisdiction


@pytest.mark.parametrize("name, offset", [
    ("centralindia", 5.5), ("ap-south-2", 5.5), ("westus3", -7.0), ("australiaeast", 10.0),
    ("me-south-1", 3.0), ("northeurope", 0.0),
])
def test_standard_utc_offsets(name, offset):
    assert catalogue_region(name).utc_offset_h == offset


def test_malformed_ccf_row_is_fixed():
    # The shared CCF Azure file says "000402" for Germany West Central; meant 0.000402 t/kWh.
    assert catalogue_region("germanywestcentral").carbon_g_per_kwh == pytest.approx(402.0)


def test_carbon_is_none_without_a_ccf_factor():
    assert catalogue_region("brazilsouth").carbon_g_per_kwh is None
    assert catalogue_region("eu-central-2").carbon_g_per_kwh is None


def test_unknown_region_is_none():
    assert catalogue_region("atlantis-1") is None


# --- measured RTTs --------------------------------------------------------------------

def test_rtt_is_symmetric_and_averaged_over_directions():
    # cloudping p50: us-east-1 -> eu-west-1 69.558 ms, back 69.644 ms.
    assert catalogue_rtt_ms("us-east-1", "eu-west-1") == pytest.approx(69.601)
    assert catalogue_rtt_ms("eu-west-1", "us-east-1") == catalogue_rtt_ms("us-east-1", "eu-west-1")
    assert catalogue_rtt_ms("eastus", "eastus2") == 10.0
    assert catalogue_rtt_ms("westeurope", "eastus") == 85.0


def test_rtt_is_none_across_providers_for_unknowns_and_self():
    assert catalogue_rtt_ms("eastus", "us-east-1") is None
    assert catalogue_rtt_ms("eastus", "atlantis-1") is None
    assert catalogue_rtt_ms("eastus", "eastus") is None


def test_every_same_provider_pair_is_measured():
    regions = list(region_catalogue().values())
    for i, a in enumerate(regions):
        for b in regions[i + 1:]:
            measured = catalogue_rtt_ms(a.name, b.name)
            assert (measured is not None) == (a.provider == b.provider), (a.name, b.name)


def test_shipped_tables_name_their_source():
    for name in ("gpus.csv", "regions.csv", "rtt_ms.csv"):
        first = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# source: "), name
