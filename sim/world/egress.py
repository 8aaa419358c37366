"""What moving a gigabyte between two regions costs: cloud inter-region egress prices.

Clouds bill data transfer at the *source* region, so a price is directional:
``egress_usd_per_gb("ap-northeast-1", "us-east-1")`` (0.09) is not the reverse (0.02).
Prices come from ``sim/world/data/egress.csv`` (``provider,src,dst,usd_per_gb``), derived
from the green-dcc Azure and AWS transmission-cost matrices (HewlettPackard/green-dcc,
MIT) and kept only for catalogue regions; Azure display names are mapped to ARM ids.

A pair the table does not price (another provider, a region outside the tables, a
scenario-defined region) gets a fallback: the median table price over pairs in the same
jurisdiction, over pairs in different jurisdictions, or over all pairs when a jurisdiction
is unknown. Those medians are pinned below and reproduced by::

    python -m sim.world.egress /work/shared/data            # rewrite sim/world/data/egress.csv
    python -m sim.world.egress /work/shared/data --out DIR  # write elsewhere (tests do this)

which also prints a summary with the medians.

Public: ``egress_usd_per_gb``, ``egress_table``, ``egress_rows``, ``fallback_medians``,
``main``, ``SAME_JURISDICTION_USD_PER_GB``, ``CROSS_JURISDICTION_USD_PER_GB``,
``UNKNOWN_JURISDICTION_USD_PER_GB``.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from sim.world.catalogue import catalogue_region

__all__ = ["egress_usd_per_gb", "egress_table", "egress_rows", "fallback_medians", "main",
           "SAME_JURISDICTION_USD_PER_GB", "CROSS_JURISDICTION_USD_PER_GB",
           "UNKNOWN_JURISDICTION_USD_PER_GB"]

# Medians over the directed pairs of egress.csv, printed by `python -m sim.world.egress
# /work/shared/data`; tests/unit/test_egress.py checks they still match the table.
SAME_JURISDICTION_USD_PER_GB = 0.02  # 36 pairs, e.g. eastus -> eastus2, eu-west-1 -> eu-west-3
CROSS_JURISDICTION_USD_PER_GB = 0.08  # 480 pairs
UNKNOWN_JURISDICTION_USD_PER_GB = 0.08  # all 516 pairs

DATA_DIR = Path(__file__).resolve().with_name("data")
AZURE_PRICES = "greendcc_azure_transmission_cost_usd_per_gb.csv"
AWS_PRICES = "greendcc_aws_transmission_cost_usd_per_gb.csv"
AZURE_COORDS = "azure_region_coordinates.csv"
HEADER = ["provider", "src", "dst", "usd_per_gb"]
SOURCE = (f"{AZURE_PRICES} and {AWS_PRICES} (shared/data; HewlettPackard/green-dcc "
          "data/network_cost, MIT); row = source region, billed at the source; Azure display "
          f"names mapped to ARM ids via {AZURE_COORDS}; catalogue regions only, src != dst; "
          "made by python -m sim.world.egress")


def egress_usd_per_gb(src: str, dst: str, src_jurisdiction: str | None = None,
                      dst_jurisdiction: str | None = None) -> float:
    """USD per GB to move data from ``src`` to ``dst`` (0 within a region).

    The table price when it has the pair; otherwise the fallback median for the two
    jurisdictions, which default to the catalogue's when the caller gives none.
    """
    if src == dst:
        return 0.0
    price = egress_table().get((src, dst))
    if price is not None:
        return price
    a = src_jurisdiction or _catalogue_jurisdiction(src)
    b = dst_jurisdiction or _catalogue_jurisdiction(dst)
    if a is None or b is None:
        return UNKNOWN_JURISDICTION_USD_PER_GB
    return SAME_JURISDICTION_USD_PER_GB if a == b else CROSS_JURISDICTION_USD_PER_GB


def _catalogue_jurisdiction(name: str) -> str | None:
    region = catalogue_region(name)
    return region.jurisdiction if region is not None else None


@lru_cache(maxsize=1)
def egress_table() -> Mapping[tuple[str, str], float]:
    """(src, dst) -> USD per GB from the shipped ``egress.csv``; directed, read-only."""
    with (DATA_DIR / "egress.csv").open(newline="", encoding="utf-8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return MappingProxyType({(r["src"], r["dst"]): float(r["usd_per_gb"]) for r in rows})


# --- derivation from the shared public data -------------------------------------------


def _catalogue_rows(regions_csv: Path) -> dict[str, dict[str, str]]:
    """Region id -> its row of the shipped ``regions.csv``, read as plain text."""
    with regions_csv.open(newline="", encoding="utf-8") as f:
        return {r["name"]: r for r in csv.DictReader(line for line in f if not line.startswith("#"))}


def _matrix(path: Path) -> dict[tuple[str, str], float]:
    """(row label, column label) -> price of a square price matrix, diagonal dropped."""
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = csv.reader(f)
    return {(row[0], dst): float(cell) for row in rows
            for dst, cell in zip(header[1:], row[1:], strict=True) if row[0] != dst}


def _azure_prices(shared: Path) -> dict[tuple[str, str], float]:
    """The Azure matrix keyed by ARM ids; regions without coordinates (not ours) dropped."""
    with (shared / AZURE_COORDS).open(newline="", encoding="utf-8") as f:
        arm = {r["region_display_name"]: r["arm_name"] for r in csv.DictReader(f)}
    return {(arm[s], arm[d]): p for (s, d), p in _matrix(shared / AZURE_PRICES).items()
            if s in arm and d in arm}


def egress_rows(shared: Path, regions_csv: Path = DATA_DIR / "regions.csv") -> list[list[str]]:
    """Rows of ``egress.csv``: one per directed pair of catalogue regions of one provider."""
    catalogue = _catalogue_rows(regions_csv)
    named = {"azure": _azure_prices(shared), "aws": _matrix(shared / AWS_PRICES)}
    rows = []
    for provider, prices in named.items():
        for (src, dst), price in prices.items():
            if all(n in catalogue and catalogue[n]["provider"] == provider for n in (src, dst)):
                rows.append([provider, src, dst, _price_text(price)])
    return sorted(rows)


def _price_text(price: float) -> str:
    text = format(price, ".3f")
    if float(text) != price:  # a finer price would be silently rounded: fail instead
        raise ValueError(f"egress price {price!r} needs more than 3 decimals")
    return text


def fallback_medians(rows: Iterable[Sequence[str]],
                     regions_csv: Path = DATA_DIR / "regions.csv") -> dict[str, tuple[float, int]]:
    """Median price and pair count: ``same`` / ``cross`` jurisdiction and ``all`` pairs."""
    jurisdiction = {name: r["jurisdiction"] for name, r in _catalogue_rows(regions_csv).items()}
    groups: dict[str, list[float]] = {"same": [], "cross": [], "all": []}
    for _, src, dst, price in rows:
        kind = "same" if jurisdiction[src] == jurisdiction[dst] else "cross"
        groups[kind].append(float(price))
        groups["all"].append(float(price))
    return {kind: (statistics.median(values), len(values)) for kind, values in groups.items()}


def write_table(path: Path, rows: Iterable[Sequence[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        f.write(f"# source: {SOURCE}\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)


def summary(rows: Sequence[Sequence[str]], medians: Mapping[str, tuple[float, int]]) -> str:
    per_provider = {p: sum(1 for r in rows if r[0] == p) for p in sorted({r[0] for r in rows})}
    lines = [f"egress.csv: {len(rows)} directed pairs " +
             ", ".join(f"{p} {n}" for p, n in per_provider.items())]
    constant = {"same": "SAME_JURISDICTION_USD_PER_GB", "cross": "CROSS_JURISDICTION_USD_PER_GB",
                "all": "UNKNOWN_JURISDICTION_USD_PER_GB"}
    lines += [f"{constant[kind]} = {value:g}  # median over {n} pairs ({kind})"
              for kind, (value, n) in medians.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.world.egress", description=__doc__.split("\n")[0])
    parser.add_argument("shared", type=Path, help="folder holding the shared public data files")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="where to write egress.csv")
    args = parser.parse_args(argv)
    rows = egress_rows(args.shared)
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(args.out / "egress.csv", rows)
    print(summary(rows, fallback_medians(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
