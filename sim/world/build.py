"""The world: regions, their GPU pools and the network, as frozen plain data.

:func:`build_world` resolves a validated scenario against the built-in catalogues: a region
named like a cloud region (``eastus``) inherits its coordinates, UTC offset, jurisdiction,
grid carbon and intra-region RTT unless the scenario sets them; every pool's GPU type is
looked up in the GPU catalogue; links left out get a measured catalogue RTT where one
exists, else the great-circle fit. No SimPy here: the engine reads this data.

Public: ``World``, ``RegionInfo``, ``PoolInfo``, ``build_world``.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from sim.scenario.model import PoolAutoscale, Region, Scenario, Serving
from sim.world.catalogue import GpuSpec, catalogue_region, catalogue_rtt_ms, gpu_spec
from sim.world.geo import fitted_rtt_ms, great_circle_km
from sim.world.topology import LinkSpec, Topology, build_topology

__all__ = ["PoolInfo", "RegionInfo", "World", "build_world", "DEFAULT_INTRA_RTT_MS",
           "DEFAULT_CARBON_G_PER_KWH"]

DEFAULT_INTRA_RTT_MS = 1.0
# Placeholder near the world-average grid intensity (about 450-480 gCO2/kWh in recent IEA
# reviews) for a region that is neither given one nor found in the catalogue.
DEFAULT_CARBON_G_PER_KWH = 450.0


@dataclass(frozen=True)
class PoolInfo:
    """A pool of identical replicas in one region."""

    region: str
    name: str
    gpu: GpuSpec
    replicas: int
    gpus_per_replica: int
    slots_per_replica: int
    serves: str = "both"  # "both", "inference" or "training"
    serving: Serving | None = None  # batching LLM servers (None: batch-1 slots)
    autoscale: PoolAutoscale | None = None  # autoscaling bounds and cold start (None: not autoscaled)

    @property
    def key(self) -> str:
        return f"{self.region}/{self.name}"

    @property
    def total_gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


@dataclass(frozen=True)
class RegionInfo:
    """A region with every attribute resolved."""

    name: str
    lat: float
    lon: float
    utc_offset_h: float
    jurisdiction: str
    intra_rtt_ms: float
    price_usd_per_kwh: float
    carbon_g_per_kwh: float
    pue: float
    pools: tuple[PoolInfo, ...]
    gpu_groups: tuple[tuple[str, int], ...] = ()  # (name, GPUs) shared by autoscaled pools

    def _grouped(self, pool: PoolInfo) -> bool:
        return pool.autoscale is not None and pool.autoscale.group is not None

    @property
    def total_gpus(self) -> int:
        """GPUs installed: each pool's own, and a shared group's GPUs once (not once per
        pool that may use them)."""
        return (sum(p.total_gpus for p in self.pools if not self._grouped(p))
                + sum(gpus for _, gpus in self.gpu_groups))

    @property
    def tdp_w(self) -> float:
        """Summed TDP of the installed GPUs, W (a group's GPUs are of its pools' type)."""
        kind = {p.autoscale.group: p.gpu for p in self.pools if self._grouped(p)}  # type: ignore[union-attr]
        return (sum(p.gpu.tdp_w * p.total_gpus for p in self.pools if not self._grouped(p))
                + sum(kind[name].tdp_w * gpus for name, gpus in self.gpu_groups if name in kind))


@dataclass(frozen=True)
class World:
    """Everything static about a simulated system."""

    regions: tuple[RegionInfo, ...]
    topology: Topology

    def region(self, name: str) -> RegionInfo:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    @property
    def pools(self) -> tuple[PoolInfo, ...]:
        return tuple(p for r in self.regions for p in r.pools)


def _resolve_region(r: Region) -> RegionInfo:
    cat = catalogue_region(r.name)

    def pick(value: float | str | None, attr: str, default: float | str) -> float | str:
        if value is not None:
            return value
        inherited = getattr(cat, attr, None) if cat is not None else None
        return default if inherited is None else inherited

    pools = tuple(PoolInfo(r.name, p.name, gpu_spec(p.gpu), p.replicas, p.gpus_per_replica,
                           p.slots_per_replica, p.serves, p.serving, p.autoscale) for p in r.pools)
    return RegionInfo(
        name=r.name, lat=float(pick(r.lat, "lat", 0.0)), lon=float(pick(r.lon, "lon", 0.0)),
        utc_offset_h=float(pick(r.utc_offset_h, "utc_offset_h", 0.0)),
        jurisdiction=str(pick(r.jurisdiction, "jurisdiction", "unspecified")),
        intra_rtt_ms=float(pick(r.intra_rtt_ms, "intra_rtt_ms", DEFAULT_INTRA_RTT_MS)),
        price_usd_per_kwh=r.price_usd_per_kwh,
        carbon_g_per_kwh=float(pick(r.carbon_g_per_kwh, "carbon_g_per_kwh", DEFAULT_CARBON_G_PER_KWH)),
        pue=r.pue, pools=pools, gpu_groups=tuple((g.name, g.gpus) for g in r.gpu_groups))


def default_rtt_ms(a: RegionInfo, b: RegionInfo) -> tuple[float, str]:
    """Measured catalogue RTT between two cloud regions, else the great-circle fit."""
    measured = catalogue_rtt_ms(a.name, b.name)
    if measured is not None:
        return measured, "catalogue"
    return fitted_rtt_ms(great_circle_km(a.lat, a.lon, b.lat, b.lon)), "fit"


def _links(s: Scenario, regions: dict[str, RegionInfo]) -> list[LinkSpec]:
    given = {frozenset((link.a, link.b)): link for link in s.links}
    pairs = [frozenset((link.a, link.b)) for link in s.links] if s.explicit_mesh else [
        frozenset(p) for p in combinations(regions, 2)]
    specs = []
    for pair in pairs:
        link = given.get(pair)
        a, b = (link.a, link.b) if link is not None else sorted(pair, key=list(regions).index)
        rtt, source = default_rtt_ms(regions[a], regions[b])
        if link is not None and link.rtt_ms is not None:
            rtt, source = link.rtt_ms, "scenario"
        bandwidth = (link.bandwidth_gbps if link is not None and link.bandwidth_gbps
                     else s.network.default_bandwidth_gbps)
        duplex = link.duplex if link is not None and link.duplex is not None else s.network.duplex
        specs.append(LinkSpec(a, b, rtt, bandwidth, source, duplex))
    return specs


def build_world(s: Scenario) -> World:
    """Resolve ``s`` against the catalogues into a :class:`World`."""
    regions = {r.name: _resolve_region(r) for r in s.regions}
    infos = tuple(regions.values())
    topology = build_topology([r.name for r in infos], [r.intra_rtt_ms for r in infos],
                              _links(s, regions))
    return World(infos, topology)
