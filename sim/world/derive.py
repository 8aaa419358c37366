"""Regenerate the shipped world tables from the shared public data, and print the RTT fit.

Meridian ships small tables *derived* from public data, in its own format, never the data
files themselves. This script is the one way those tables are made::

    python -m sim.world.derive /work/shared/data            # rewrite sim/world/data/*.csv
    python -m sim.world.derive /work/shared/data --out DIR  # write elsewhere (tests do this)

It writes ``gpus.csv``, ``regions.csv`` and ``rtt_ms.csv`` deterministically (sorted rows,
fixed float formats, ``\\n`` line ends), each opening with a ``# source:`` line, then prints
the least-squares RTT-on-distance fit whose figures are pinned in :mod:`sim.world.geo`.

The facts no data file states are hand-written here: each region's standard UTC offset,
its country, which countries are EU members, the fix for two malformed carbon rows, and
which datasheet row each short GPU name means.

Public: ``main``, ``fit_pairs``, ``region_rows``, ``rtt_rows``, ``gpu_rows``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from sim.world.geo import RttFit, fit_rtt_model, great_circle_km

__all__ = ["main", "fit_pairs", "region_rows", "rtt_rows", "gpu_rows"]

SHIPPED_DIR = Path(__file__).resolve().with_name("data")
AZURE_COORDS = "azure_region_coordinates.csv"
AZURE_RTT = "azure_interregion_rtt_p50_2025-06_matrix.csv"
AWS_COORDS = "aws_region_coordinates.csv"
AWS_RTT = "aws_interregion_rtt_p50_1y_cloudping.json"
CCF = {"azure": "ccf_grid_emissions_factors_azure.csv", "aws": "ccf_grid_emissions_factors_aws.csv"}
GPU_CATALOGUE = "gpu_catalogue.csv"

# Standard (winter, non-DST) UTC offset of the city each region sits in, in hours.
UTC_OFFSET_H: dict[str, float] = {
    # Azure
    "eastus": -5, "eastus2": -5, "centralus": -6, "southcentralus": -6, "westus2": -8,
    "westus3": -7, "canadacentral": -5, "brazilsouth": -3, "northeurope": 0,
    "westeurope": 1, "uksouth": 0, "francecentral": 1, "germanywestcentral": 1,
    "swedencentral": 1, "japaneast": 9, "koreacentral": 9, "southeastasia": 8,
    "eastasia": 8, "centralindia": 5.5, "australiaeast": 10, "uaenorth": 4,
    "southafricanorth": 2,
    # AWS
    "us-east-1": -5, "us-east-2": -5, "us-west-1": -8, "us-west-2": -8, "ca-central-1": -5,
    "ca-west-1": -7, "mx-central-1": -6, "sa-east-1": -3, "eu-west-1": 0, "eu-west-2": 0,
    "eu-west-3": 1, "eu-central-1": 1, "eu-central-2": 1, "eu-south-1": 1, "eu-south-2": 1,
    "eu-north-1": 1, "il-central-1": 2, "me-central-1": 4, "me-south-1": 3,
    "af-south-1": 2, "ap-south-1": 5.5, "ap-south-2": 5.5, "ap-southeast-1": 8,
    "ap-southeast-2": 10, "ap-southeast-3": 7, "ap-southeast-4": 10, "ap-southeast-5": 8,
    "ap-southeast-7": 7, "ap-east-1": 8, "ap-northeast-1": 9, "ap-northeast-2": 9,
    "ap-northeast-3": 9,
}

# ISO 3166-1 alpha-2 country of each region (Hong Kong has its own code, HK).
COUNTRY: dict[str, str] = {
    "eastus": "US", "eastus2": "US", "centralus": "US", "southcentralus": "US",
    "westus2": "US", "westus3": "US", "canadacentral": "CA", "brazilsouth": "BR",
    "northeurope": "IE", "westeurope": "NL", "uksouth": "GB", "francecentral": "FR",
    "germanywestcentral": "DE", "swedencentral": "SE", "japaneast": "JP",
    "koreacentral": "KR", "southeastasia": "SG", "eastasia": "HK", "centralindia": "IN",
    "australiaeast": "AU", "uaenorth": "AE", "southafricanorth": "ZA",
    "us-east-1": "US", "us-east-2": "US", "us-west-1": "US", "us-west-2": "US",
    "ca-central-1": "CA", "ca-west-1": "CA", "mx-central-1": "MX", "sa-east-1": "BR",
    "eu-west-1": "IE", "eu-west-2": "GB", "eu-west-3": "FR", "eu-central-1": "DE",
    "eu-central-2": "CH", "eu-south-1": "IT", "eu-south-2": "ES", "eu-north-1": "SE",
    "il-central-1": "IL", "me-central-1": "AE", "me-south-1": "BH", "af-south-1": "ZA",
    "ap-south-1": "IN", "ap-south-2": "IN", "ap-southeast-1": "SG", "ap-southeast-2": "AU",
    "ap-southeast-3": "ID", "ap-southeast-4": "AU", "ap-southeast-5": "MY",
    "ap-southeast-7": "TH", "ap-east-1": "HK", "ap-northeast-1": "JP",
    "ap-northeast-2": "KR", "ap-northeast-3": "JP",
}

# The 27 EU member states: their regions get jurisdiction "EU" so residency rules can say EU.
EU_MEMBERS = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"})

# Two Azure CCF rows lost their "0." in transcription (PROVENANCE.md); the fix is applied
# only when the raw value is exactly the documented broken one.
CCF_AZURE_FIXES = {"Finland Central": ("000077", "0.000077"),
                   "Germany West Central": ("000402", "0.000402")}

# Short GPU name -> (gpu, form_factor) row of the shared catalogue, and accepted aliases.
GPU_SHORT_NAMES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "A100": ("A100-80GB", "SXM4", ("A100-80GB", "A100-SXM4-80GB")),
    "H100": ("H100-80GB", "SXM5", ("H100-80GB", "H100-SXM5")),
    "H100-PCIe": ("H100-80GB", "PCIe", ("H100-PCIE-80GB",)),
    "H200": ("H200-141GB", "SXM5", ("H200-141GB", "H200-SXM5")),
    "B200": ("B200", "SXM (HGX B200)", ("B200-180GB",)),
    "MI300X": ("MI300X", "OAM", ("MI300X-192GB",)),
}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _jurisdiction(region: str) -> str:
    country = COUNTRY[region]
    return "EU" if country in EU_MEMBERS else country


def _ccf_value(provider: str, row: dict[str, str]) -> float:
    raw = row["CO2e (metric ton/kWh)"].strip()
    broken, fixed = CCF_AZURE_FIXES.get(row["Region"], ("", ""))
    value = float(fixed if provider == "azure" and raw == broken else raw)
    if not 0 <= value < 0.01:  # no grid emits 10 t/kWh: a missing "0." would show up here
        raise ValueError(f"{CCF[provider]}: {row['Region']}: implausible CO2e {raw!r} t/kWh")
    return value


def ccf_carbon(shared: Path, provider: str) -> dict[str, tuple[float, str]]:
    """CCF region label -> (gCO2e/kWh, CCF's cited source). Azure labels are display names."""
    rows = _read_csv(shared / CCF[provider])
    return {r["Region"].strip(): (_ccf_value(provider, r) * 1e6, r["Source"].strip()) for r in rows}


def azure_coords(shared: Path) -> list[dict[str, str]]:
    return _read_csv(shared / AZURE_COORDS)


def aws_coords(shared: Path) -> list[dict[str, str]]:
    return _read_csv(shared / AWS_COORDS)


def azure_rtts(shared: Path) -> dict[tuple[str, str], float]:
    """Unordered Azure pair (arm names, sorted) -> p50 RTT ms; the matrix is symmetric."""
    arm = {r["region_display_name"]: r["arm_name"] for r in azure_coords(shared)}
    with (shared / AZURE_RTT).open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    matrix = {row[0]: dict(zip(header[1:], map(float, row[1:]), strict=True)) for row in rows}
    names = header[1:]
    return {_unordered(arm[a], arm[b]): (matrix[a][b] + matrix[b][a]) / 2
            for i, a in enumerate(names) for b in names[i + 1:]}


def _unordered(a: str, b: str) -> tuple[str, str]:
    """The pair in sorted order, the key of an undirected pair."""
    return (a, b) if a <= b else (b, a)


def _aws_matrix(shared: Path) -> dict[str, dict[str, float]]:
    return json.loads((shared / AWS_RTT).read_text(encoding="utf-8"))["data"]


def aws_rtts(shared: Path) -> dict[tuple[str, str], float]:
    """Unordered AWS pair (sorted) -> p50 RTT ms, the mean of both measured directions."""
    m = _aws_matrix(shared)
    names = sorted(m)
    return {(a, b): (m[a][b] + m[b][a]) / 2 for i, a in enumerate(names) for b in names[i + 1:]}


def aws_intra_rtts(shared: Path) -> dict[str, float]:
    """AWS region -> intra-region (cross-AZ) p50 RTT ms, the diagonal of the cloudping matrix."""
    return {name: row[name] for name, row in _aws_matrix(shared).items()}


def _coords_by_name(shared: Path) -> dict[str, tuple[float, float]]:
    coords = {r["arm_name"]: (float(r["lat"]), float(r["lon"])) for r in azure_coords(shared)}
    coords.update({r["region"]: (float(r["lat"]), float(r["lon"])) for r in aws_coords(shared)})
    return coords


def fit_pairs(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    """Great-circle km and p50 RTT ms of every off-diagonal Azure and AWS pair, in a fixed order."""
    coords = _coords_by_name(shared)
    rtts = sorted(azure_rtts(shared).items()) + sorted(aws_rtts(shared).items())
    km = [great_circle_km(*coords[a], *coords[b]) for (a, b), _ in rtts]
    return np.array(km), np.array([rtt for _, rtt in rtts])


def _carbon_cells(entry: tuple[float, str] | None) -> tuple[str, str]:
    if entry is None:
        return "", ""
    return format(entry[0], ".3f"), entry[1]


def _region_row(provider: str, name: str, display: str, lat: str, lon: str,
                intra: float | None, carbon: tuple[float, str] | None, coord_note: str) -> list[str]:
    grams, carbon_source = _carbon_cells(carbon)
    source = f"coords: {coord_note}"
    if intra is not None:
        source += f"; intra RTT: {AWS_RTT} diagonal"
    if carbon is not None:
        source += f"; carbon: {CCF[provider]} ({carbon_source})"
    return [provider, name, display, format(float(lat), ".6f"), format(float(lon), ".6f"),
            format(UTC_OFFSET_H[name], ".2f"), COUNTRY[name], _jurisdiction(name),
            format(intra, ".3f") if intra is not None else "", grams, source]


REGION_HEADER = ["provider", "name", "display_name", "lat", "lon", "utc_offset_h", "country",
                 "jurisdiction", "intra_rtt_ms", "carbon_g_per_kwh", "source"]


def _azure_region_rows(shared: Path) -> list[list[str]]:
    carbon = ccf_carbon(shared, "azure")  # keyed by display name, like the coordinates file
    return [_region_row("azure", r["arm_name"], r["region_display_name"], r["lat"], r["lon"], None,
                        carbon.get(r["region_display_name"]), f"{AZURE_COORDS} ({r['coord_source']})")
            for r in azure_coords(shared)]


def _aws_region_rows(shared: Path) -> list[list[str]]:
    carbon, intra = ccf_carbon(shared, "aws"), aws_intra_rtts(shared)
    return [_region_row("aws", r["region"], r["city"], r["lat"], r["lon"], intra[r["region"]],
                        carbon.get(r["region"]), f"{AWS_COORDS} (city-level)")
            for r in aws_coords(shared)]


def region_rows(shared: Path) -> list[list[str]]:
    """One row per Azure and AWS region in the coordinates files, sorted by provider, name."""
    rows = _azure_region_rows(shared) + _aws_region_rows(shared)
    return sorted(rows, key=lambda row: (row[0], row[1]))


def rtt_rows(shared: Path) -> list[list[str]]:
    """One row per unordered measured pair (a < b), sorted by provider, a, b."""
    rows = [["azure", a, b, format(v, ".3f")] for (a, b), v in azure_rtts(shared).items()]
    rows += [["aws", a, b, format(v, ".3f")] for (a, b), v in aws_rtts(shared).items()]
    return sorted(rows)


GPU_HEADER = ["name", "aliases", "form_factor", "bf16_tflops", "memory_gb", "memory_bw_tb_s",
              "tdp_w", "source"]


def gpu_rows(shared: Path) -> list[list[str]]:
    """One row per short GPU name; ``bf16_tflops`` is the dense (non-sparse) figure."""
    by_key = {(r["gpu"], r["form_factor"]): r for r in _read_csv(shared / GPU_CATALOGUE)}
    rows = []
    for short, (gpu, form, aliases) in sorted(GPU_SHORT_NAMES.items()):
        r = by_key[(gpu, form)]
        rows.append([short, "|".join(aliases), form, format(float(r["bf16_dense_tflops"]), "g"),
                     format(float(r["memory_gb"]), "g"), format(float(r["memory_bw_tb_s"]), "g"),
                     format(float(r["tdp_w"]), "g"), f"{r['source']} [confidence: {r['confidence']}]"])
    return rows


def write_table(path: Path, source: str, header: list[str], rows: Iterable[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        f.write(f"# source: {source}\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_all(shared: Path, out: Path) -> None:
    """Write the three derived tables into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "gpus.csv", f"{GPU_CATALOGUE} (shared/data), single-GPU rows mapped to short "
                "names by sim/world/derive.py; bf16_tflops = dense", GPU_HEADER, gpu_rows(shared))
    write_table(out / "regions.csv", f"{AZURE_COORDS}, {AWS_COORDS}, {AWS_RTT} (diagonal), "
                f"{CCF['azure']}, {CCF['aws']} (t/kWh x 1e6 = g/kWh) (shared/data); UTC offsets, "
                "countries and EU jurisdiction hand-written in sim/world/derive.py",
                REGION_HEADER, region_rows(shared))
    write_table(out / "rtt_ms.csv", f"{AZURE_RTT} and {AWS_RTT} (shared/data); one row per "
                "unordered pair, mean of both directions, names are cloud region ids",
                ["provider", "a", "b", "rtt_p50_ms"], rtt_rows(shared))


def _describe(fit: RttFit) -> str:
    return (f"rtt_ms = {fit.intercept_ms:.5f} + {fit.ms_per_km:.8f} * km  "
            f"(path inflation {fit.path_inflation:.3f}x)\n"
            f"  n_pairs={fit.n_pairs}  MAE={fit.mae_ms:.2f} ms  RMSE={fit.rmse_ms:.2f} ms  "
            f"R2={fit.r2:.4f}  p90|err|={fit.p90_abs_error_ms:.2f} ms")


def fit_report(shared: Path) -> str:
    """The fit over all pairs, then each provider alone, as printable text."""
    km, rtt = fit_pairs(shared)
    n_azure = len(azure_rtts(shared))
    parts = [("all pairs", slice(None)), ("azure only", slice(0, n_azure)),
             ("aws only", slice(n_azure, None))]
    return "\n".join(f"{label}: {_describe(fit_rtt_model(km[s], rtt[s]))}" for label, s in parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.world.derive", description=__doc__.split("\n")[0])
    parser.add_argument("shared", type=Path, help="folder holding the shared public data files")
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, help="where to write the CSVs")
    args = parser.parse_args(argv)
    write_all(args.shared, args.out)
    print(fit_report(args.shared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
