"""Progress on stderr for the commands that take a while: how far, how fast, how long to go.

A :class:`Progress` follows one count growing to a known total: simulated seconds for a run
(shown in hours, with events per second), runs for a comparison, sweep or plan, charts for a
report. Where it shows depends on stderr:

- a terminal: a tqdm bar redrawn in place (tqdm throttles the redraws);
- anything else (a log file, CI, a pipe): one plain line every ``interval_s`` of wall time
  (:data:`LINE_INTERVAL_S`, 10 s), so a log holds a few lines, not thousands;
- ``quiet``: nothing at all.

The wall clock is read here, and only to show rates and the time left. A simulation feeds a
``Progress`` from outside its event queue (``Environment.watch``, the request loop's
progress ticks), so showing progress or not changes no event, no order and no result.

Public: ``Progress``, ``LINE_INTERVAL_S``, ``format_seconds``.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "LINE_INTERVAL_S", "format_seconds"]

LINE_INTERVAL_S = 10.0  # between two plain lines when stderr is not a terminal
_RATE_WINDOW_S = 1.0  # events/s is measured over at least this much wall time


class Progress:
    """One count towards ``total``: ``update(done)`` sets it, ``advance()`` adds one.

    ``scale`` and ``unit`` say how the count is shown (``3600`` and ``"h simulated"`` for
    simulated seconds shown in hours). ``tty`` overrides what ``stream.isatty()`` says;
    ``clock`` is injectable for tests."""

    def __init__(self, label: str, total: float, unit: str, *, scale: float = 1.0, quiet: bool = False,
                 stream: TextIO | None = None, tty: bool | None = None, interval_s: float = LINE_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.label, self.total, self.unit, self.scale = label, max(float(total), 0.0), unit, scale
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s, self.clock = interval_s, clock
        self.done, self.events = 0.0, 0
        self.started = self._next_line = clock()
        self._next_line += interval_s
        self._rate_at, self._rate_events, self.rate = self.started, 0, 0.0
        self.mode = "off" if quiet else "bar" if (_is_tty(self.stream) if tty is None else tty) else "lines"
        self._bar: Any = self._open_bar() if self.mode == "bar" else None

    def _open_bar(self) -> Any:
        from tqdm import tqdm

        digits = ".1f" if self.scale != 1.0 else ".0f"
        return tqdm(total=self.total / self.scale, desc=self.label, file=self.stream, dynamic_ncols=True,
                    mininterval=0.25, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                    f"{{n:{digits}}}/{{total:{digits}}} {self.unit} [{{elapsed}}<{{remaining}}{{postfix}}]")

    def update(self, done: float, events: int | None = None) -> None:
        """The count is now ``done`` (and ``events`` events have been processed, if known)."""
        if self.mode == "off":
            return
        now = self.clock()
        if events is not None:
            self._measure_rate(now, events)
        self.done = min(max(done, self.done), self.total)
        if self._bar is not None:
            if self.rate:
                self._bar.set_postfix_str(f"{self.rate:,.0f} events/s", refresh=False)
            self._bar.update(self.done / self.scale - self._bar.n)
        elif now >= self._next_line:
            self._next_line = now + self.interval_s
            print(self.line(now), file=self.stream, flush=True)

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def __call__(self, done: float, events: int) -> None:
        """The shape a simulation calls: simulated seconds and events so far."""
        self.update(done, events)

    def _measure_rate(self, now: float, events: int) -> None:
        self.events = events
        if now - self._rate_at >= _RATE_WINDOW_S:
            self.rate = (events - self._rate_events) / (now - self._rate_at)
            self._rate_at, self._rate_events = now, events

    def line(self, now: float) -> str:
        """The plain line: ``run default: 6.0/24.0 h simulated (25 %), 410,000 events/s, 31 s elapsed,
        about 1 min 33 s left``."""
        digits = ".1f" if self.scale != 1.0 else ".0f"
        share = self.done / self.total if self.total else 1.0
        elapsed = now - self.started
        parts = [f"{self.label}: {self.done / self.scale:{digits}}/{self.total / self.scale:{digits}} {self.unit} "
                 f"({share * 100:.0f} %)"]
        if self.rate:
            parts.append(f"{self.rate:,.0f} events/s")
        parts.append(f"{format_seconds(elapsed)} elapsed")
        if 0 < share < 1:
            parts.append(f"about {format_seconds(elapsed * (1 - share) / share)} left")
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
