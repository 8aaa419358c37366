"""Failures at run time: replicas and regions go down and come back; the system reacts.

Timelines are drawn before the run (:mod:`sim.models.reliability`) from the ``failures``
section, each pool and outage from its own random stream, or read from a trace. During the
run one SimPy process per source applies them:

* a replica failure takes one *up* replica of the pool down until its repair. It strikes a
  GPU drawn uniformly among the pool's up GPUs: the serving (inference) replicas first in
  that order, then the GPUs training jobs hold (jobs in id order), then idle ones. A hit on
  a serving replica loses its requests in service (retried or dropped, per
  ``failures.inference``) and the pool serves one replica less until a healthy idle replica
  replaces it after ``detection + warmup``; a hit on a training job interrupts the job
  (it loses the work since its last checkpoint and requeues); a hit on an idle replica only
  shrinks what can be activated;
* a region outage takes every replica of the region's pools down for its duration: all
  their requests (in service, queued, travelling there) are retried elsewhere or dropped,
  and all their training jobs are interrupted;
* ``detection`` after each failure, repair or outage edge, the scheduler re-allocates on the
  capacity that is up (failover: standby replicas it activates serve after ``warmup``).

The engine integrates each pool's up GPUs over time for the availability figures and keeps
one :class:`~sim.metrics.records.FailureRecord` per failure for ``failures.csv``.

Public: ``FailureEngine``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import simpy
from simpy.core import URGENT

from sim.metrics.records import FailureRecord
from sim.models.reliability import default_mtbf_s, random_outages, replica_failures
from sim.scenario.model import Scenario
from sim.streams import Streams
from sim.workload.failure_trace import read_failure_trace

__all__ = ["FailureEngine"]


class FailureEngine:
    """Draws and applies the failures of one run; keeps what happened."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, pools: Sequence, streams: Streams,
                 base_dir: Path, source: str, inference=None, training=None, scheduler=None, topology=None):
        self.env, self.scenario, self.pools = env, scenario, list(pools)
        self.base_topology = self.topology = topology
        self.route_listeners: list = []  # called with the new Topology when links fail or return
        self.link_failures = 0
        self._cut: dict[frozenset[str], int] = {}
        self.cut_off: dict[str, list[list[float]]] = {}  # origin -> [start, end] with no reachable pool
        self.config = scenario.failures
        self.inference, self.training, self.scheduler = inference, training, scheduler
        self.records: list[FailureRecord] = []
        self.node_failures = self.region_outages = 0
        self._hits = streams.get("failures/hits")
        n = len(self.pools)
        self._up_area = [0.0] * n
        self._since = [0.0] * n
        self._up_now = [p.up * p.info.gpus_per_replica for p in self.pools]
        horizon = float(scenario.duration)
        by_key = {p.info.key: p for p in self.pools}
        for k, spec in enumerate(self.config.nodes):
            chosen = [p for p in self.pools if not spec.pools or p.info.key in spec.pools
                      or p.info.region in spec.pools]
            for pool in chosen:
                rng = streams.get(f"failures/nodes/{k}/{pool.info.key}")
                mtbf = spec.mtbf if spec.mtbf is not None else default_mtbf_s(pool.info.gpus_per_replica)
                fail, back = replica_failures(rng, pool.info.replicas, horizon, mtbf, spec.shape,
                                              spec.repair.kind, spec.repair.mean, spec.repair.cv)
                env.process(self._replay(pool, [(float(a), float(b) - float(a), 1) for a, b in zip(fail, back)]))
        for i, outage in enumerate(self.config.outages):
            if outage.at is not None:
                spans = [(float(outage.at), float(outage.at) + float(outage.duration))]
            else:
                rng = streams.get(f"failures/outages/{i}")
                spans = random_outages(rng, outage.rate_per_year, float(outage.duration), horizon)
            members = [p for p in self.pools if p.info.region == outage.region]
            env.process(self._outages(outage.region, members, spans))
        for cut in self.config.links:
            env.process(self._links(cut))
        if self.config.trace:
            rows = read_failure_trace(base_dir / self.config.trace, self.config.trace, source, by_key)
            for key in sorted({r[1] for r in rows}):
                env.process(self._replay(by_key[key], [(t, d, n) for t, k, n, d in rows if k == key]))

    # -- bookkeeping -----------------------------------------------------------------------
    def _account(self, p: int) -> None:
        now = self.env.now
        self._up_area[p] += self._up_now[p] * (now - self._since[p])
        self._since[p] = now

    def _changed(self, pool) -> None:
        """After ``down``/``dark``/``lost`` moved: integrate, refresh the pool, notify."""
        p = pool.index
        self._account(p)
        self._up_now[p] = pool.up * pool.info.gpus_per_replica
        pool.refresh(self.env.now)

    def _detect_later(self, pools, down: int = 0, dark: int = 0, replace=None) -> None:
        """After the detection delay the scheduler learns of the change and re-allocates."""
        self.env.process(self._detect(pools, down, dark, replace))

    def _detect(self, pools, down: int, dark: int, replace):
        yield self.env.timeout(self.config.detection)
        for pool in pools:
            pool.known_down += down
            pool.known_dark += dark
        if replace is not None:  # a failed serving replica: a healthy one takes over, once warm
            until = self.env.now + self.config.warmup
            replace.replace_lost(until)
            self._changed(replace)
            self.env.process(self._warmed(replace, until))
        if self.scheduler is not None:
            self.scheduler.failover()

    def _warmed(self, pool, until: float):
        yield self.env.timeout(until - self.env.now)
        pool.warmed(self.env.now)

    def _serving(self, pool) -> int:
        if self.inference is None or pool.info.serves == "training":
            return 0
        return pool.active_replicas

    # -- replica failures ----------------------------------------------------------------
    def _replay(self, pool, events: list[tuple[float, float, int]]):
        """Apply (time, duration, replicas) failures to ``pool`` in time order."""
        env = self.env
        for t, duration, replicas in sorted(events):
            if t >= self.scenario.duration:
                return
            if t > env.now:
                yield env.timeout(t - env.now)
            for _ in range(replicas):
                self._fail_one(pool, duration)

    def _fail_one(self, pool, duration: float) -> None:
        now = self.env.now
        self.node_failures += 1
        g = pool.info.gpus_per_replica
        u, u2 = self._hits.random(2)
        if pool.down >= pool.info.replicas:
            hit = "down"  # nothing left to fail (a trace asking for more than the pool has)
        elif pool.dark:
            hit = "dark"
            pool.down += 1
        else:
            up_gpus = pool.up * g
            serving = self._serving(pool)
            training = self.training.training_gpus(pool.index) if self.training is not None else 0
            x = u * up_gpus
            pool.down += 1
            if x < serving * g:
                hit = "inference"
                pool.lost += 1
                self._changed(pool)
                self.inference.replicas_failed(pool.index, now, 1, serving, u2)
            elif x < serving * g + training:
                hit = "training"
                self.training.replica_failed(pool.index, x - serving * g)
            else:
                hit = "idle"
        if hit != "down":
            if hit != "inference":
                held = self.training.training_gpus(pool.index) if self.training is not None else 0
                self._changed_by_failure(pool)
                if hit == "idle" and held and self.training.training_gpus(pool.index) < held:
                    hit = "training"  # the replica held part of a job that no longer fits
            self._repair_later(pool, duration)
            self._detect_later([pool], down=1, replace=pool if hit == "inference" else None)
        self.records.append(FailureRecord("node", pool.info.region, pool.info.name, 1, now, now + duration, hit))

    def _changed_by_failure(self, pool) -> None:
        """Capacity fell under training by a failure: jobs that no longer fit are
        interrupted (they lose work), not preempted (which would checkpoint them for free)."""
        if self.training is not None:
            self.training.overflow_cause = "failure"
        try:
            self._changed(pool)
        finally:
            if self.training is not None:
                self.training.overflow_cause = "preempt"

    def _repair_later(self, pool, duration: float) -> None:
        """The replica is back after ``duration``; repairs due at the same instant as a
        failure are applied first (an urgent event), so the failure finds the replica up."""
        event = self.env.event()
        event.callbacks.append(lambda _event: self._repaired(pool))
        event._ok, event._value = True, None
        self.env.schedule(event, URGENT, duration)

    def _repaired(self, pool) -> None:
        pool.down -= 1
        self._changed(pool)
        self._detect_later([pool], down=-1)

    # -- region outages ------------------------------------------------------------------
    def _outages(self, region: str, members: list, spans: list[tuple[float, float]]):
        env = self.env
        for start, end in spans:
            if start >= self.scenario.duration:
                return
            if start > env.now:
                yield env.timeout(start - env.now)
            self.region_outages += 1
            self.records.append(FailureRecord("region", region, "*", sum(p.info.replicas for p in members),
                                              start, end, "region"))
            serving = {p.index: self._serving(p) for p in members}
            if self.training is not None:  # first, so that they stop by failure, not by preemption
                self.training.pools_failed({p.index for p in members})
            for pool in members:
                pool.dark += 1
                self._changed_by_failure(pool)
            if self.inference is not None:
                for pool in members:
                    self.inference.replicas_failed(pool.index, env.now, max(serving[pool.index], 1),
                                                   max(serving[pool.index], 1), 0.0)
            self._detect_later(members, dark=1)
            yield env.timeout(end - env.now)
            for pool in members:
                pool.dark -= 1
                self._changed(pool)
            self._detect_later(members, dark=-1)

    # -- links and partitions -------------------------------------------------------------
    def _edges(self, cut) -> set[frozenset[str]]:
        graph = self.base_topology.graph
        if cut.regions is None:
            return {frozenset((cut.a, cut.b))} if graph.has_edge(cut.a, cut.b) else set()
        group = set(cut.regions)
        return {frozenset((u, v)) for u, v in graph.edges if (u in group) != (v in group)}

    def _links(self, cut):
        env = self.env
        yield env.timeout(cut.at)
        edges = self._edges(cut)
        end = cut.at + cut.duration
        where = "|".join(cut.regions) if cut.regions is not None else f"{cut.a}-{cut.b}"
        kind = "link" if cut.regions is None else "partition"
        self.link_failures += 1
        self.records.append(FailureRecord(kind, where, "*", 0, env.now, end, kind))
        for edge in edges:
            self._cut[edge] = self._cut.get(edge, 0) + 1
        self._reroute()
        yield env.timeout(cut.duration)
        for edge in edges:
            self._cut[edge] -= 1
        self._reroute()

    def _reroute(self) -> None:
        """Recompute the routing table without the cut links; tell inference; note which
        origins can reach no pool that serves requests."""
        from sim.world.topology import without_links

        cut = {edge for edge, n in self._cut.items() if n > 0}
        self.topology = without_links(self.base_topology, cut) if cut else self.base_topology
        if self.inference is not None:
            self.inference.set_rtt(self.topology.rtt_ms)
        for listener in self.route_listeners:
            listener(self.topology)
        names = self.topology.names
        with_pools = [names.index(r) for r in {p.info.region for p in self.pools if p.info.serves != "training"}]
        for o, origin in enumerate(names):
            if not with_pools:
                break
            alone = not np.isfinite(self.topology.rtt_ms[o, with_pools]).any()
            spans = self.cut_off.setdefault(origin, [])
            if alone and (not spans or spans[-1][1] < self.env.now):
                spans.append([self.env.now, float("inf")])
            elif not alone and spans and spans[-1][1] == float("inf"):
                spans[-1][1] = self.env.now

    # -- results -------------------------------------------------------------------------
    def availability(self, end_s: float) -> dict[str, float]:
        """Per region: time-average fraction of its GPUs that were up over [0, end_s]."""
        up: dict[str, float] = {}
        total: dict[str, float] = {}
        for p, pool in enumerate(self.pools):
            area = self._up_area[p] + self._up_now[p] * (end_s - self._since[p])
            region = pool.info.region
            up[region] = up.get(region, 0.0) + area
            total[region] = total.get(region, 0.0) + pool.info.total_gpus * end_s
        return {r: up[r] / total[r] for r in up if total[r] > 0}

    def gpu_hours_down(self, end_s: float) -> float:
        areas = [self._up_area[p] + self._up_now[p] * (end_s - self._since[p]) for p in range(len(self.pools))]
        return (sum(p.info.total_gpus for p in self.pools) * end_s - sum(areas)) / 3600.0
