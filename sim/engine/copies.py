"""Plain bulk copies between regions: the ``transfers`` section of a scenario.

Each copy of ``transfers.copies`` starts at its times ``at`` and, with ``rate_per_h``, as a
Poisson stream (drawn from its own random stream ``transfers/<name>``, up to
``max_copies``); each row of ``transfers.trace`` starts one copy. A copy moves its bytes on
the :class:`~sim.engine.network.TransferManager`, sharing links with every other transfer in
its priority class, and waits for a path when its regions are cut apart. A copy of a
dataset obeys its residency rule: a soft rule broken is published as a
:class:`~sim.records.ResidencyViolation` when the copy starts (hard rules are refused when
the scenario is read). What landed is published through the
:class:`~sim.engine.network.TransferBook`: a row of transfers.csv and the borders it crossed.

Public: ``CopyEngine``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy

from sim.engine.bus import Bus
from sim.engine.network import TransferBook, TransferManager
from sim.records import ResidencyViolation, RoutesChanged
from sim.scenario.checks import residency_allows
from sim.scenario.model import Copy, Scenario
from sim.streams import Streams
from sim.workload.copy_trace import CopyRow
from sim.world import World

__all__ = ["CopyEngine"]


def _times(copy: Copy, rng: np.random.Generator, horizon: float) -> list[float]:
    """Start times of a copy's instances: its ``at`` times, then its Poisson stream."""
    times = [float(t) for t in copy.at]
    if copy.rate_per_h is not None:
        t, drawn = 0.0, 0
        while copy.max_copies is None or drawn < copy.max_copies:
            t += rng.exponential(3600.0 / copy.rate_per_h)
            if t >= horizon:
                break
            times.append(t)
            drawn += 1
    return times


class CopyEngine:
    """Starts the scenario's copies and records those that land."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, world: World, transfers: TransferManager,
                 bus: Bus, streams: Streams, trace: Sequence[CopyRow] = ()):
        self.env, self.scenario, self.transfers, self.bus = env, scenario, transfers, bus
        self.book = TransferBook(scenario, world, bus)
        self.datasets = {d.name: d for d in scenario.datasets}
        self._pending: list[CopyRow] = []  # no path yet
        assert scenario.transfers is not None
        rows = list(trace)
        for copy in scenario.transfers.copies:
            size = copy.size_gb if copy.size_gb is not None else self.datasets[str(copy.dataset)].size_gb
            for t in _times(copy, streams.get(f"transfers/{copy.name}"), float(scenario.duration)):
                rows.append(CopyRow(t, copy.src, copy.dst, size, copy.priority, copy.dataset, f"copy:{copy.name}"))
        rows.sort(key=lambda r: r.time_s)  # stable: ties keep the scenario's order
        env.process(self._starts(rows))
        bus.subscribe(self.rerouted, (RoutesChanged,))

    def _starts(self, rows: list[CopyRow]):
        env = self.env
        for row in rows:
            if row.time_s >= self.scenario.duration:
                return
            if row.time_s > env.now:
                yield env.timeout(row.time_s - env.now)
            self._start(row)

    def _start(self, row: CopyRow) -> None:
        src, dst = row.src.partition("/")[0], row.dst.partition("/")[0]  # the regions
        if self.transfers.topology.path(src, dst) is None:
            self._pending.append(row)
            return
        what = row.dataset or row.label
        if row.dataset is not None and not residency_allows(self.scenario, self.datasets[row.dataset], dst):
            self.bus.emit(ResidencyViolation(self.env.now, row.dataset, dst))
        size = row.size_gb * 1e9
        flow_id, done, _ = self.transfers.start(row.src, row.dst, size, row.priority)
        started, cost = self.env.now, row.size_gb * self.book.egress(src, dst)
        done.callbacks.append(lambda event: self.book.landed(flow_id, what, -1, size, started, cost, event.value,
                                                              self.env.now, row.priority))

    def rerouted(self, record: RoutesChanged) -> None:
        """Paths changed: start the copies that were waiting for one."""
        pending, self._pending = self._pending, []
        for row in pending:
            self._start(row)
