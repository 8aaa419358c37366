"""Energy, carbon and electricity cost of the GPUs, from their utilisation over time.

Power model (per region, documented in docs/metrics.md): every installed GPU draws its idle
power, a busy GPU (serving requests or held by a training job) draws its TDP, and the
datacenter multiplies by its PUE:

    P(t) = PUE * (idle_w * total_gpus + (tdp_w - idle_w) * busy_gpus(t)),
    idle_w = IDLE_FRACTION * tdp_w.

Energy is the integral of P over the measured window; carbon = kWh x grid intensity; cost
= kWh x electricity price. A region with pools of several GPU types uses their GPU-weighted
mean TDP (its busy GPUs are not split by type in the time series).

Public: ``IDLE_FRACTION``, ``energy_summary``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["IDLE_FRACTION", "energy_summary"]

# Idle draw as a share of TDP: an idle H100 SXM draws roughly 60-90 W of its 700 W and an
# A100 SXM about 50-60 W of 400 W in public measurements; 0.15 is a round middle value.
IDLE_FRACTION = 0.15


def energy_summary(rows: Sequence[dict[str, Any]], regions: Sequence, start_s: float) -> dict[str, Any]:
    """The ``energy`` section: kWh, kg CO2e and USD over [start_s, end), total and by region."""
    info = {r.name: r for r in regions if r.total_gpus}
    by_region: dict[str, dict[str, float]] = {}
    for name, region in info.items():
        tdp = region.tdp_w / region.total_gpus
        idle = IDLE_FRACTION * tdp
        joules = 0.0
        for row in rows:
            if row["region"] != name or row["t_start_s"] < start_s:
                continue
            busy = row["busy_gpus"] + row["training_gpus"]
            watts = region.pue * (idle * region.total_gpus + (tdp - idle) * busy)
            joules += watts * (row["t_end_s"] - row["t_start_s"])
        kwh = joules / 3.6e6
        by_region[name] = {"kwh": kwh, "co2_kg": kwh * region.carbon_g_per_kwh / 1000.0,
                           "cost_usd": kwh * region.price_usd_per_kwh}
    total = {key: sum(v[key] for v in by_region.values()) for key in ("kwh", "co2_kg", "cost_usd")}
    return {**total, "idle_fraction": IDLE_FRACTION, "by_region": by_region}
