"""Cold starts: how long a replica the autoscaler adds takes before it serves.

A cold start is ``provisioning_s + weight_load_s(weights_bytes, load_gbps)``: the replica
is obtained and booted, then the model's weights are read at the load bandwidth. With
``weights_from: local`` the bandwidth is the pool's ``load_gbps``; with ``nearest`` the
weights come over the WAN from the nearest other region (smallest path RTT, ties in
declaration order) that has a pool serving the same model, at
``min(load_gbps, bottleneck link of the path)``. The path is the one at the start of the
run: a WAN load is a fixed rate, not a transfer sharing links with others.

Public: ``ColdStartSpec``, ``weight_load_s``, ``weights_bytes``, ``cold_start_spec``,
``weights_source``.
"""
from __future__ import annotations

from dataclasses import dataclass

from sim.world.build import PoolInfo, World
from sim.world.llm_catalogue import llm_spec

_GB = 1e9  # weights_gb counts 10^9 bytes, as every GB in a scenario

__all__ = ["ColdStartSpec", "weight_load_s", "weights_bytes", "cold_start_spec", "weights_source"]


def weight_load_s(weights_bytes: float, load_gbps: float) -> float:
    """Seconds to read ``weights_bytes`` at ``load_gbps`` Gbit/s (10^9 bit/s)."""
    return weights_bytes * 8.0 / (load_gbps * 1e9)


@dataclass(frozen=True)
class ColdStartSpec:
    """What one replica's cold start costs in a pool."""

    provisioning_s: float
    weights_bytes: float
    load_gbps: float  # effective: configured, capped by the WAN path when fetched
    source: str  # region the weights are read from (the pool's own for local storage)

    @property
    def load_s(self) -> float:
        return weight_load_s(self.weights_bytes, self.load_gbps)

    @property
    def total_s(self) -> float:
        return self.provisioning_s + self.load_s


def weights_bytes(pool: PoolInfo) -> float:
    """Bytes of weights a replica of ``pool`` loads: ``autoscale.weights_gb`` if given,
    else its served model's ``params x bytes_per_weight``."""
    config = pool.autoscale
    if config is not None and config.weights_gb is not None:
        return config.weights_gb * _GB
    if pool.serving is None:
        raise ValueError(f"{pool.key}: autoscale.weights_gb is needed without a serving section")
    return llm_spec(pool.serving.model).weight_bytes


def weights_source(pool: PoolInfo, world: World) -> str | None:
    """The nearest other region with a pool serving ``pool``'s model (None: there is none)."""
    if pool.serving is None:
        return None
    model, topology = pool.serving.model, world.topology
    holders = [r.name for r in world.regions if r.name != pool.region
               and any(p.serving is not None and p.serving.model == model for p in r.pools)]
    reachable = [(topology.path_rtt_ms(r, pool.region), i, r) for i, r in enumerate(holders)]
    reachable = [entry for entry in reachable if entry[0] != float("inf")]
    return min(reachable)[2] if reachable else None


def cold_start_spec(pool: PoolInfo, world: World) -> ColdStartSpec:
    """The cold start of one replica of the autoscaled ``pool``."""
    config = pool.autoscale
    if config is None:
        raise ValueError(f"{pool.key} is not autoscaled")
    size = weights_bytes(pool)
    if config.weights_from == "local":
        return ColdStartSpec(config.provisioning_s, size, config.load_gbps, pool.region)
    source = weights_source(pool, world)
    if source is None:
        raise ValueError(f"{pool.key}: no other region serves {pool.serving.model if pool.serving else 'its model'}")
    gbps = min(config.load_gbps, world.topology.bottleneck_gbps(source, pool.region))
    return ColdStartSpec(config.provisioning_s, size, gbps, source)
