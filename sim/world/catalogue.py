"""Built-in catalogues: GPU types, cloud regions and measured inter-region RTTs (pure data).

A scenario may name a GPU by a short name (``H100``) and a region by its cloud id
(``eastus``, ``us-east-1``) and inherit the facts from here instead of restating them.
The facts come from small tables shipped in ``sim/world/data/``, each derived from public
data by ``python -m sim.world.derive`` and opening with a ``# source:`` line:

* ``gpus.csv`` - per-GPU datasheet peaks. Short names mean one form factor each:
  ``A100`` = A100 80 GB SXM4, ``H100`` = H100 80 GB SXM5, ``H100-PCIe`` = H100 80 GB PCIe,
  ``H200`` = H200 141 GB SXM5, ``B200`` = B200 in HGX B200 (SXM), ``MI300X`` = MI300X OAM.
  ``bf16_tflops`` is the dense figure (no 2:4 sparsity).
* ``regions.csv`` - every Azure and AWS region with coordinates: standard UTC offset,
  jurisdiction (ISO 3166 alpha-2, ``EU`` for EU members), grid carbon from the
  cloud-carbon-footprint factors, and for AWS the intra-region (cross-AZ) p50 RTT.
* ``rtt_ms.csv`` - measured p50 RTT per unordered same-provider pair.

Everything is loaded once and cached; the returned mappings are read-only.

Public: ``GpuSpec``, ``CatalogueRegion``, ``gpu_catalogue``, ``gpu_spec``,
``region_catalogue``, ``catalogue_region``, ``catalogue_rtt_ms``.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

__all__ = ["GpuSpec", "CatalogueRegion", "gpu_catalogue", "gpu_spec", "region_catalogue",
           "catalogue_region", "catalogue_rtt_ms", "DATA_DIR"]

DATA_DIR = Path(__file__).resolve().with_name("data")


@dataclass(frozen=True)
class GpuSpec:
    """Peak figures of one accelerator type, per GPU."""

    name: str
    bf16_tflops: float  # dense
    memory_gb: float
    memory_bw_tb_s: float
    tdp_w: float
    form_factor: str
    source: str


@dataclass(frozen=True)
class CatalogueRegion:
    """A cloud region as the catalogue knows it; ``None`` marks a fact we have no data for."""

    name: str
    provider: str
    display_name: str
    lat: float
    lon: float
    utc_offset_h: float
    jurisdiction: str
    carbon_g_per_kwh: float | None
    intra_rtt_ms: float | None
    country: str
    source: str


def _read_table(filename: str) -> list[dict[str, str]]:
    """Rows of a shipped table, skipping its ``#`` comment lines."""
    with (DATA_DIR / filename).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _optional_float(text: str) -> float | None:
    return float(text) if text else None


def _gpu(row: dict[str, str]) -> GpuSpec:
    return GpuSpec(name=row["name"], bf16_tflops=float(row["bf16_tflops"]),
                   memory_gb=float(row["memory_gb"]), memory_bw_tb_s=float(row["memory_bw_tb_s"]),
                   tdp_w=float(row["tdp_w"]), form_factor=row["form_factor"], source=row["source"])


@lru_cache(maxsize=1)
def gpu_catalogue() -> Mapping[str, GpuSpec]:
    """Short name and every alias -> spec; an alias maps to the very same object."""
    table: dict[str, GpuSpec] = {}
    for row in _read_table("gpus.csv"):
        spec = _gpu(row)
        for key in (spec.name, *filter(None, row["aliases"].split("|"))):
            if key in table:
                raise ValueError(f"gpus.csv: GPU name {key!r} defined twice")
            table[key] = spec
    return MappingProxyType(table)


def gpu_spec(name: str) -> GpuSpec:
    """The spec for ``name``; ``KeyError`` listing the valid names when unknown."""
    catalogue = gpu_catalogue()
    if name not in catalogue:
        raise KeyError(f"unknown GPU type {name!r} (valid: {', '.join(sorted(catalogue))})")
    return catalogue[name]


def _region(row: dict[str, str]) -> CatalogueRegion:
    return CatalogueRegion(
        name=row["name"], provider=row["provider"], display_name=row["display_name"],
        lat=float(row["lat"]), lon=float(row["lon"]), utc_offset_h=float(row["utc_offset_h"]),
        jurisdiction=row["jurisdiction"], carbon_g_per_kwh=_optional_float(row["carbon_g_per_kwh"]),
        intra_rtt_ms=_optional_float(row["intra_rtt_ms"]), country=row["country"],
        source=row["source"])


@lru_cache(maxsize=1)
def region_catalogue() -> Mapping[str, CatalogueRegion]:
    """Cloud region id -> region, for every Azure and AWS region in the catalogue."""
    return MappingProxyType({r.name: r for r in map(_region, _read_table("regions.csv"))})


def catalogue_region(name: str) -> CatalogueRegion | None:
    """The catalogue region called ``name``, or ``None`` if it is not a known cloud region."""
    return region_catalogue().get(name)


@lru_cache(maxsize=1)
def _rtt_table() -> Mapping[frozenset[str], float]:
    # Keyed by the unordered pair: the table stores each pair once, already direction-averaged.
    return MappingProxyType({frozenset((r["a"], r["b"])): float(r["rtt_p50_ms"])
                             for r in _read_table("rtt_ms.csv")})


def catalogue_rtt_ms(a: str, b: str) -> float | None:
    """Measured p50 RTT in ms between two regions of one provider; ``None`` if not measured.

    Symmetric in ``a`` and ``b``. Cross-provider pairs, unknown names and ``a == b`` give
    ``None`` (the intra-region RTT is :attr:`CatalogueRegion.intra_rtt_ms`).
    """
    return _rtt_table().get(frozenset((a, b))) if a != b else None
