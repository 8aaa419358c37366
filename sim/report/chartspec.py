"""A chart a report can draw: its file name, title, the files it reads, and how to draw it.

Builders look at a result folder and return a :class:`Chart` when the data for it is
present, or a :class:`Skipped` saying what is missing; :func:`render_charts` saves each
chart once per format into ``charts/`` and keeps the skips, so a report can list both.

Public: ``Chart``, ``Skipped``, ``Rendered``, ``one_axes``, ``render_charts``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sim.report.style import apply_style, save_figures

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Chart", "Skipped", "Rendered", "one_axes", "render_charts"]


@dataclass(frozen=True)
class Chart:
    """A figure to draw: ``draw()`` returns a matplotlib figure (drawn only when rendered)."""

    name: str
    title: str
    reads: str
    draw: Callable[[], Figure]


@dataclass(frozen=True)
class Skipped:
    """A chart left out, and why (``reason`` names the missing file or data)."""

    name: str
    reason: str


@dataclass(frozen=True)
class Rendered:
    """A chart saved to ``files`` (``format -> path``)."""

    chart: Chart
    files: dict[str, Path]


def one_axes(draw: Callable[[Axes], None], size: tuple[float, float]) -> Callable[[], Figure]:
    """A ``Chart.draw`` for a one-panel chart: a figure of ``size`` inches, ``draw(ax)`` on it."""
    def make() -> Figure:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=size)
        draw(ax)
        return fig
    return make


def render_charts(entries: Sequence[Chart | Skipped], charts_dir: Path, formats: Sequence[str],
                  footer: Callable[[Figure], None] | None = None,
                  on_entry: Callable[[], None] | None = None) -> tuple[list[Rendered], list[Skipped]]:
    """Draw every :class:`Chart` in ``entries`` to ``charts_dir/<name>.<fmt>`` (``footer``
    adds its line to each figure: what run it shows); call ``on_entry()`` after each entry,
    drawn or skipped (progress on stderr)."""
    apply_style()
    rendered, skipped = [], []
    for entry in entries:
        if isinstance(entry, Skipped):
            skipped.append(entry)
        else:
            paths = {fmt: Path(charts_dir) / f"{entry.name}.{fmt}" for fmt in formats}
            fig = entry.draw()
            if footer is not None:
                footer(fig)
            save_figures(fig, list(paths.values()))
            rendered.append(Rendered(entry, paths))
        if on_entry is not None:
            on_entry()
    return rendered, skipped
