"""The world map of a run: regions on longitude/latitude axes, links as great-circle arcs.

No map data is drawn or downloaded: the axes are plain degrees with a graticule. A region's
marker area grows with its installed GPUs (a users-only region is a hollow ring); each link
is the great circle between its two regions, sampled by spherical linear interpolation
(slerp) of their unit vectors and split where it crosses the antimeridian. Links are
coloured by the bytes copies (datasets, checkpoints, KV caches) sent over them when a run moved data
(``transfers.csv``, each copy counted on every hop of its route), else by their RTT.

The regions and links come from ``resolved.yaml`` rebuilt into a :class:`~sim.world.World`,
so catalogue regions get their real coordinates and measured RTTs exactly as in the run.

Public: ``MapData``, ``great_circle``, ``read_map_data``, ``plot_world_map``.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from sim.errors import MeridianError
from sim.report.style import PALETTE
from sim.scenario import load_scenario
from sim.world import build_world

# isort: split
# pyplot after sim.report.style, which chose the Agg backend.
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize

__all__ = ["MapData", "great_circle", "read_map_data", "plot_world_map"]


@dataclass(frozen=True)
class MapData:
    """Plain data for the map: ``regions`` as (name, lat, lon, gpus), ``links`` as
    (a, b, rtt_ms, traffic_bytes)."""

    regions: tuple[tuple[str, float, float, int], ...]
    links: tuple[tuple[str, str, float, float], ...]

    @property
    def has_traffic(self) -> bool:
        return any(link[3] > 0 for link in self.links)


def _unit(lat: float, lon: float) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.array([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def great_circle(lat1: float, lon1: float, lat2: float, lon2: float, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (lat, lon in degrees) along the shorter great-circle arc between two points.

    Where the arc crosses the antimeridian a NaN point is inserted so that a line plot
    breaks there instead of drawing a stroke across the whole map.
    """
    a, b = _unit(lat1, lon1), _unit(lat2, lon2)
    omega = np.arccos(np.clip(a @ b, -1.0, 1.0))
    t = np.linspace(0.0, 1.0, n)[:, None]
    if omega < 1e-9:
        points = np.repeat(a[None, :], n, axis=0)
    else:
        points = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    lat = np.degrees(np.arcsin(np.clip(points[:, 2], -1.0, 1.0)))
    lon = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    jumps = np.flatnonzero(np.abs(np.diff(lon)) > 180.0) + 1
    return np.insert(lat, jumps, np.nan), np.insert(lon, jumps, np.nan)


def _link_traffic(run_dir: Path, paths: Callable[[str, str], tuple[str, ...] | None]) -> dict[frozenset[str], float]:
    """Bytes per undirected link: every copy in ``transfers.csv`` counted on each hop of its route."""
    traffic: dict[frozenset[str], float] = {}
    path = run_dir / "transfers.csv"
    if not path.is_file():
        return traffic
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            route = paths(row.get("src", ""), row.get("dst", "")) or ()
            for u, v in pairwise(route):
                key = frozenset((u, v))
                traffic[key] = traffic.get(key, 0.0) + float(row.get("bytes") or 0.0)
    return traffic


def read_map_data(run_dir: Path) -> MapData | None:
    """The map of the run in ``run_dir``, or None when its ``resolved.yaml`` is absent or unreadable."""
    run_dir = Path(run_dir)
    resolved = run_dir / "resolved.yaml"
    if not resolved.is_file():
        return None
    try:
        world = build_world(load_scenario(resolved).scenario)
    except (MeridianError, OSError, KeyError, ValueError):
        return None
    traffic = _link_traffic(run_dir, world.topology.path)
    regions = tuple((r.name, r.lat, r.lon, r.total_gpus) for r in world.regions)
    links = tuple((a, b, float(d["rtt_ms"]), traffic.get(frozenset((a, b)), 0.0))
                  for a, b, d in world.topology.graph.edges(data=True))
    return MapData(regions, links)


def _link_colours(data: MapData) -> tuple[np.ndarray, Normalize, str]:
    """(values, norm, label) of the quantity that colours the links."""
    if data.has_traffic:
        values = np.array([link[3] for link in data.links]) / 1e12
        positive = values[values > 0]
        low, high = positive.min(), positive.max()
        # A log scale only when the traffic spans orders of magnitude; otherwise its ticks are unreadable.
        norm = LogNorm(low, high) if high > 100 * low else Normalize(0.0, high)
        return values, norm, "bytes copied (TB)"
    values = np.array([link[2] for link in data.links])
    return values, Normalize(values.min(), max(values.max(), values.min() + 1.0)), "link RTT (ms)"


def plot_world_map(ax: Axes, data: MapData) -> None:
    """Regions (marker area ~ GPUs) and links (great-circle arcs coloured by traffic or RTT)."""
    cmap = plt.get_cmap("viridis")
    where = {name: (lat, lon) for name, lat, lon, _ in data.regions}
    if data.links:
        values, norm, label = _link_colours(data)
        for (a, b, _, _), value in zip(data.links, values, strict=True):
            arc_lat, arc_lon = great_circle(*where[a], *where[b])
            quiet = data.has_traffic and value <= 0
            ax.plot(arc_lon, arc_lat, color="#BBBBBB" if quiet else cmap(norm(value)),
                    linewidth=1.0 if quiet else 2.0, zorder=2)
        mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        ax.figure.colorbar(mappable, ax=ax, label=label, shrink=0.7, pad=0.01)
    most = max((g for *_, g in data.regions), default=0) or 1
    for name, lat, lon, gpus in data.regions:
        size = 40 + 560 * gpus / most
        face = PALETTE[1] if gpus else "none"
        ax.scatter([lon], [lat], s=size, facecolor=face, edgecolor="#000000", linewidth=1.0, zorder=3)
        ax.annotate(f"{name}\n{gpus} GPUs" if gpus else f"{name}\n(users only)", (lon, lat),
                    xytext=(6, 6), textcoords="offset points", fontsize=8, zorder=4)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xticks(np.arange(-180, 181, 60))
    ax.set_yticks(np.arange(-90, 91, 30))
    ax.set_aspect("equal")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title("Regions (marker area ~ GPUs) and links (great-circle arcs)")
