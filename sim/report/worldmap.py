"""The world map of a run: regions on longitude/latitude axes, links as great-circle arcs.

Land is drawn from Natural Earth's 1:110m countries (public domain), shipped in
``sim/report/data/land_110m.json``; nothing is downloaded. The map zooms to the regions
(with a margin; the whole world when they span it) and places each label where it overlaps
no earlier one. A region's marker area grows with its installed GPUs (a users-only region
is a hollow ring); each link
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
import json
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

__all__ = ["MapData", "great_circle", "read_map_data", "plot_world_map", "map_extent"]

LAND = Path(__file__).with_name("data") / "land_110m.json"


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


def map_extent(lons: list[float], lats: list[float]) -> tuple[float, float, float, float]:
    """(lon0, lon1, lat0, lat1): the regions with a margin, at least 50 x 28 degrees (so a
    map of one region still shows where it is), clipped to the world."""
    if not lons:
        return -180.0, 180.0, -90.0, 90.0
    lon0, lon1 = min(lons) - 12.0, max(lons) + 12.0
    lat0, lat1 = min(lats) - 10.0, max(lats) + 10.0
    for low, high, least, limit in ((0, 1, 50.0, 180.0), (2, 3, 28.0, 90.0)):
        box = [lon0, lon1, lat0, lat1]
        if box[high] - box[low] < least:
            mid = (box[low] + box[high]) / 2
            box[low], box[high] = mid - least / 2, mid + least / 2
        shift = max(-limit - box[low], 0.0) - max(box[high] - limit, 0.0)
        box[low], box[high] = max(box[low] + shift, -limit), min(box[high] + shift, limit)
        lon0, lon1, lat0, lat1 = box
    if lon1 - lon0 > 250:  # most of the world: all of it
        lon0, lon1, lat0, lat1 = -180.0, 180.0, max(lat0, -60.0), min(lat1, 85.0)
    return lon0, lon1, lat0, lat1


def _draw_land(ax: Axes) -> None:
    try:
        rings = json.loads(LAND.read_text(encoding="utf-8"))["rings"]
    except (OSError, ValueError, KeyError):
        return  # a map without land still shows the regions
    from matplotlib.collections import PolyCollection

    polygons = [np.asarray(ring, dtype=float).reshape(-1, 2) for ring in rings]
    ax.add_collection(PolyCollection(polygons, facecolors="#ECECEC", edgecolors="#FFFFFF", linewidths=0.4,
                                     zorder=0))


def _place_labels(ax: Axes, data: MapData, fontsize: float = 8.0, counts: bool = True) -> None:
    """Each region's label at the first of eight offsets around its marker where its box
    overlaps no label placed before it (the biggest regions first); else the first offset.
    ``counts``: a second line with the region's GPUs."""
    fig = ax.figure
    to_px = ax.transData.transform
    frame = ax.get_window_extent()
    pt = fig.dpi / 72.0
    offsets = [(7, 5), (7, -17), (-7, 5), (-7, -17), (0, 12), (0, -24), (14, -6), (-14, -6)]
    placed: list[tuple[float, float, float, float]] = []
    for name, lat, lon, gpus in sorted(data.regions, key=lambda r: -r[3]):
        text = (f"{name}\n{gpus:,} GPUs" if counts else name) if gpus else f"{name}\n(users only)"
        width = max(len(line) for line in text.split("\n")) * 0.6 * fontsize * pt
        height = 2.4 * fontsize * pt
        x, y = to_px((lon, lat))
        choice = offsets[0]
        for dx, dy in offsets:
            left = x + dx * pt - (width if dx < 0 else width / 2 if dx == 0 else 0.0)
            box = (left, y + dy * pt, left + width, y + dy * pt + height)
            inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
            if inside and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                                  for b in placed):
                choice = (dx, dy)
                placed.append(box)
                break
        else:
            left = x + choice[0] * pt
            placed.append((left, y + choice[1] * pt, left + width, y + choice[1] * pt + height))
        ha = "right" if choice[0] < 0 else "center" if choice[0] == 0 else "left"
        ax.annotate(text, (lon, lat), xytext=choice, textcoords="offset points", fontsize=fontsize, ha=ha,
                    va="bottom", zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75})


def plot_world_map(ax: Axes, data: MapData) -> None:
    """Land, regions (marker area ~ GPUs) and links (great-circle arcs coloured by traffic or RTT)."""
    where = {name: (lat, lon) for name, lat, lon, _ in data.regions}
    arcs = [great_circle(*where[a], *where[b]) for a, b, _, _ in data.links]
    lon0, lon1, lat0, lat1 = _extent(data, arcs)
    ax.set_xlim(lon0, lon1)
    ax.set_ylim(lat0, lat1)
    ax.set_aspect("equal")
    _draw_land(ax)
    sizes = {g for *_, g in data.regions if g}
    same = len(sizes) == 1 and sum(1 for *_, g in data.regions if g) > 1  # name the one size once, in the title
    title = "Regions (marker area ~ installed GPUs) and links (great-circle arcs)"
    if same:
        title = f"Regions ({sizes.pop():,} GPUs each) and links (great-circle arcs)"
    if data.links:
        rtt = _draw_links(ax, data, arcs)
        if rtt is not None:
            title = f"{title[:-1]}, RTT {rtt:,.0f} ms)"
    span = max(lon1 - lon0, 1.0)
    _draw_regions(ax, data, span)
    _place_labels(ax, data, counts=not same)
    step = 60 if span > 180 else 30 if span > 90 else 10
    ax.set_xticks(np.arange(np.ceil(lon0 / step) * step, lon1 + 1e-9, step))
    ystep = 30 if lat1 - lat0 > 90 else 10
    ax.set_yticks(np.arange(np.ceil(lat0 / ystep) * ystep, lat1 + 1e-9, ystep))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(title)


def _extent(data: MapData, arcs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float, float]:
    """(lon0, lon1, lat0, lat1) around the regions and arcs; every longitude when an arc wraps around."""
    lons = [r[2] for r in data.regions] + [float(v) for _, arc_lon in arcs for v in arc_lon if v == v]
    lats = [r[1] for r in data.regions] + [float(v) for arc_lat, _ in arcs for v in arc_lat if v == v]
    lon0, lon1, lat0, lat1 = map_extent(lons, lats)
    if any(np.isnan(arc_lon).any() for _, arc_lon in arcs):  # an arc wraps around: show every longitude
        lon0, lon1 = -180.0, 180.0
    return lon0, lon1, lat0, lat1


def _draw_links(ax: Axes, data: MapData, arcs: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """The arcs coloured by traffic or RTT with a colour bar beside the map; the one RTT of
    every link instead of the bar when they all share it (then the title names it)."""
    cmap = plt.get_cmap("viridis")
    width = 2.5 if len(data.links) <= 20 else 1.2  # a full mesh of many regions: thinner arcs
    values, norm, label = _link_colours(data)
    single = float(values.max() - values.min()) < 0.5 and not data.has_traffic
    for (arc_lat, arc_lon), value in zip(arcs, values, strict=True):
        quiet = data.has_traffic and value <= 0
        colour = "#BBBBBB" if quiet else PALETTE[0] if single else cmap(norm(value))
        ax.plot(arc_lon, arc_lat, color=colour, linewidth=1.0 if quiet else width, zorder=2,
                solid_capstyle="round")
    if single:  # one RTT for every link: a colour scale would span a meaningless millisecond
        return float(values[0])
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    # Beside the map as drawn (its height follows the equal-aspect axes, not the figure).
    ax.figure.colorbar(mappable, cax=ax.inset_axes((1.015, 0.1, 0.018, 0.8)), label=label)
    return None


def _draw_regions(ax: Axes, data: MapData, span: float) -> None:
    """A marker per region, its area in proportion to its GPUs (hollow: users only)."""
    most = max((g for *_, g in data.regions), default=0) or 1
    scale = min(1.0, max(span / 360.0, 0.35))  # smaller markers on a zoomed map, where regions sit closer
    if len(data.regions) > 12:  # and on a crowded one
        scale *= 0.35
    for _name, lat, lon, gpus in data.regions:
        size = (40 + 560 * gpus / most) * scale
        face = PALETTE[1] if gpus else "white"
        ax.scatter([lon], [lat], s=size, facecolor=face, edgecolor="#000000", linewidth=1.0, zorder=3, alpha=0.9)
