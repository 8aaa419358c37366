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
* a failure domain's event (a rack, a power domain, a software push) takes every member
  replica down at once, each struck as above, until the event is repaired; domains may
  overlap (a replica stays down while any event covering it lasts);
* a region outage takes every replica of the region's pools down for its duration: all
  their requests (in service, queued, travelling there) are retried elsewhere or dropped,
  and all their training jobs are interrupted;
* ``detection`` after each failure, repair or outage edge, the scheduler re-allocates on the
  capacity that is up (failover: standby replicas it activates serve after ``warmup``).

The engine changes pools only through their own methods and publishes what happens: a
:class:`~sim.records.FailureRecord` when a failure begins, :class:`~sim.records.ReplicaFailed`
for what it struck (serving and training react), :class:`~sim.records.RegionDown` before an
outage darkens a region, :class:`~sim.records.FailureDetected` after the detection delay
(the scheduler reacts), and link cuts through :class:`~sim.engine.network.Routes`. Pool
capacity changes carry their cause (``failure``, ``replica_lost``, ``repair``, ``outage``,
``outage_end``, ``detected``), from which the metrics integrate availability.

Public: ``FailureEngine``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import simpy

from sim.engine.bus import Bus
from sim.engine.core import UrgentTimeout
from sim.engine.datacenter import PoolRuntime
from sim.engine.network import Routes
from sim.models.reliability import default_mtbf_s, draw_repair, random_outages, replica_failure_ids, replica_failures
from sim.records import CapacityCause, FailureDetected, FailureRecord, RegionDown, ReplicaFailed
from sim.scenario.model import FailureDomain, Scenario, replica_range
from sim.streams import Streams

__all__ = ["FailureEngine"]

TraceRow = tuple[float, str, int, float]  # (time_s, region/pool, replicas, duration_s)


class FailureEngine:
    """Draws and applies the failures of one run."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, pools: Sequence[PoolRuntime], streams: Streams,
                 bus: Bus, routes: Routes, trace: Sequence[TraceRow] = (), serving: bool = False,
                 training_gpus: Callable[[int], int] | None = None):
        """``serving``: inference workloads exist; ``training_gpus(pool)``: GPUs running
        training jobs hold on a pool (None without training)."""
        self.env, self.scenario, self.pools, self.bus, self.routes = env, scenario, list(pools), bus, routes
        if scenario.failures is None:
            raise ValueError("FailureEngine needs a scenario with a failures section")
        self.config = scenario.failures
        self.serving, self.training_gpus = serving, training_gpus
        self._hits = streams.get("failures/hits")
        horizon = float(scenario.duration)
        by_key = {p.info.key: p for p in self.pools}
        # Per pool with failure domains, per replica: domain events covering it now, whether
        # its own (independent) failure holds it down, and whether it holds one of the
        # pool's down replicas (the pool may have had none up to take).
        self._covered: dict[int, list[int]] = {}
        self._failed: dict[int, list[bool]] = {}
        self._taken: dict[int, list[bool]] = {}
        domains = [(domain, self._members(domain, by_key)) for domain in self.config.domains]
        self._start_node_failures(streams, horizon)
        self._start_outages(streams, horizon)
        for domain, covering in domains:
            env.process(self._domain(domain, covering, self._domain_events(domain, streams, horizon)))
        for cut in self.config.links:
            env.process(self._links(cut))
        for key in sorted({row[1] for row in trace}):
            env.process(self._replay(by_key[key], [(t, d, n) for t, k, n, d in trace if k == key]))

    def _start_node_failures(self, streams: Streams, horizon: float) -> None:
        """One process per pool a ``nodes`` entry covers, replaying its drawn failures (by
        replica index in a pool that failure domains name)."""
        for k, spec in enumerate(self.config.nodes):
            chosen = [p for p in self.pools if not spec.pools or p.info.key in spec.pools
                      or p.info.region in spec.pools]
            for pool in chosen:
                rng = streams.get(f"failures/nodes/{k}/{pool.info.key}")
                mtbf = spec.mttf if spec.mttf is not None else default_mtbf_s(pool.info.gpus_per_replica)
                fail, back, ids = replica_failure_ids(rng, pool.info.replicas, horizon, mtbf, spec.shape,
                                                      spec.repair.kind, spec.repair.mean, spec.repair.cv)
                if pool.index in self._covered:  # replicas known by index: a domain names them
                    named = [(float(a), float(b) - float(a), int(j)) for a, b, j in zip(fail, back, ids, strict=True)]
                    self.env.process(self._replay_named(pool, named))
                    continue
                events = [(float(a), float(b) - float(a), 1) for a, b in zip(fail, back, strict=True)]
                self.env.process(self._replay(pool, events))

    def _start_outages(self, streams: Streams, horizon: float) -> None:
        """One process per region outage, scheduled or drawn."""
        for i, outage in enumerate(self.config.outages):
            if outage.at is not None:
                spans = [(float(outage.at), float(outage.at) + float(outage.duration))]
            else:
                assert outage.rate_per_year is not None  # the scenario checks demand exactly one of the two
                spans = random_outages(streams.get(f"failures/outages/{i}"), outage.rate_per_year,
                                       float(outage.duration), horizon)
            members = [p for p in self.pools if p.info.region == outage.region]
            # Operators know when a scheduled outage ends; a random one is expected to last
            # its mean length.
            expected = [end if outage.at is not None else start + float(outage.duration) for start, end in spans]
            self.env.process(self._outages(outage.region, members, spans, expected))

    # -- announcing ------------------------------------------------------------------------
    def _changed(self, pool: PoolRuntime, cause: CapacityCause) -> None:
        pool.refresh(self.env.now, cause)

    def _detect_later(self, pools: list[PoolRuntime], down: int = 0, dark: int = 0,
                      replace: PoolRuntime | None = None) -> None:
        """After the detection delay the scheduler learns of the change and re-allocates."""
        self.env.process(self._detect(pools, down, dark, replace))

    def _detect(self, pools: list[PoolRuntime], down: int, dark: int, replace: PoolRuntime | None):
        yield self.env.timeout(self.config.detection)
        if replace is not None:  # a failed serving replica: a healthy one takes over, once warm
            until = self.env.now + self.config.warmup
            replace.replace_lost(until)
            self._changed(replace, "detected")
            self.env.process(self._warmed(replace, until))
        self.bus.emit(FailureDetected(self.env.now, tuple(p.index for p in pools), down, dark))

    def _warmed(self, pool: PoolRuntime, until: float):
        yield self.env.timeout(until - self.env.now)
        pool.warmed(self.env.now)

    def _serving(self, pool: PoolRuntime) -> int:
        if not self.serving or pool.info.serves == "training":
            return 0
        return pool.active_replicas

    def _training(self, pool: PoolRuntime) -> int:
        return self.training_gpus(pool.index) if self.training_gpus is not None else 0

    # -- replica failures ----------------------------------------------------------------
    def _replay(self, pool: PoolRuntime, events: list[tuple[float, float, int]]):
        """Apply (time, duration, replicas) failures to ``pool`` in time order."""
        env = self.env
        for t, duration, replicas in sorted(events):
            if t >= self.scenario.duration:
                return
            if t > env.now:
                yield env.timeout(t - env.now)
            for _ in range(replicas):
                self._fail_one(pool, duration)

    def _replay_named(self, pool: PoolRuntime, events: list[tuple[float, float, int]]):
        """Apply (time, duration, replica index) failures to a pool whose replicas failure
        domains name: a replica already down (a domain event covers it) fails without
        taking another one down, and comes back when both its repair and the events end."""
        env = self.env
        failed, taken, info = self._failed[pool.index], self._taken[pool.index], pool.info
        for t, duration, i in sorted(events):
            if t >= self.scenario.duration:
                return
            if t > env.now:
                yield env.timeout(t - env.now)
            failed[i] = True
            hit = "down"
            if not taken[i]:
                hit = self._take_one(pool, None)
                taken[i] = hit != "down"
            UrgentTimeout(env, duration, partial(self._named_repaired, pool, i))
            self.bus.emit(FailureRecord("node", info.region, info.name, 1, env.now, env.now + duration, hit))

    def _named_repaired(self, pool: PoolRuntime, i: int, _event: object = None) -> None:
        self._failed[pool.index][i] = False
        self._release(pool, i)

    def _release(self, pool: PoolRuntime, i: int) -> None:
        """Replica ``i`` is back unless a domain event or its own failure still holds it."""
        if self._covered[pool.index][i] == 0 and not self._failed[pool.index][i] and self._taken[pool.index][i]:
            self._taken[pool.index][i] = False
            self._repaired(pool)

    def _fail_one(self, pool: PoolRuntime, duration: float) -> None:
        now = self.env.now
        hit = self._take_one(pool, duration)
        info = pool.info
        self.bus.emit(FailureRecord("node", info.region, info.name, 1, now, now + duration, hit))

    def _take_one(self, pool: PoolRuntime, duration: float | None) -> str:
        """Take one up replica of ``pool`` down; return what it struck. ``duration``: its
        repair is due then (None: the caller brings it back)."""
        u, u2 = self._hits.random(2)
        if pool.down >= pool.info.replicas:
            return "down"  # nothing left to fail (a trace asking for more than the pool has)
        if pool.dark:
            hit = "dark"
            pool.take_down(serving=False)
        else:
            hit = self._strike(pool, u, u2)
        if hit != "inference":
            held = self._training(pool)
            self._changed(pool, "failure")
            if hit == "idle" and held and self._training(pool) < held:
                hit = "training"  # the replica held part of a job that no longer fits
        if duration is not None:
            self._repair_later(pool, duration)
        self._detect_later([pool], down=1, replace=pool if hit == "inference" else None)
        return hit

    def _strike(self, pool: PoolRuntime, u: float, u2: float) -> str:
        """A failure strikes a GPU drawn uniformly among the pool's up GPUs: serving replicas
        first, then the GPUs training holds, then idle ones. A struck job is interrupted
        before the pool shrinks (it, not a bystander, pays); a serving replica's requests
        are displaced once the pool has shrunk."""
        g = pool.info.gpus_per_replica
        serving = self._serving(pool)
        training = self._training(pool)
        x = u * (pool.up * g)
        if x < serving * g:
            pool.take_down(serving=True)
            self._changed(pool, "replica_lost")
            self.bus.emit(ReplicaFailed(self.env.now, pool.index, "inference", 1, serving, u2))
            return "inference"
        pool.take_down(serving=False)
        if x < serving * g + training:
            self.bus.emit(ReplicaFailed(self.env.now, pool.index, "training", offset_gpus=x - serving * g))
            return "training"
        return "idle"

    def _repair_later(self, pool: PoolRuntime, duration: float) -> None:
        """The replica is back after ``duration``; repairs due at the same instant as a
        failure are applied first, so the failure finds the replica up."""
        UrgentTimeout(self.env, duration, lambda _event: self._repaired(pool))

    def _repaired(self, pool: PoolRuntime) -> None:
        pool.bring_up()
        self._changed(pool, "repair")
        self._detect_later([pool], down=-1)

    # -- failure domains -----------------------------------------------------------------
    def _members(self, domain: FailureDomain, by_key: dict[str, PoolRuntime]) -> list[tuple[PoolRuntime, range]]:
        members = []
        for key, text in domain.members.items():
            pool = by_key[key]
            indices = replica_range(text) or range(pool.info.replicas)
            self._covered.setdefault(pool.index, [0] * pool.info.replicas)
            self._failed.setdefault(pool.index, [False] * pool.info.replicas)
            self._taken.setdefault(pool.index, [False] * pool.info.replicas)
            members.append((pool, indices))
        return members

    def _domain_events(self, domain: FailureDomain, streams: Streams, horizon: float) -> list[tuple[float, float]]:
        """(start, duration) of the domain's events: its random renewal process, then the
        scheduled ones, each lasting a repair time."""
        rng = streams.get(f"failures/domains/{domain.name}")
        repair = domain.repair
        events: list[tuple[float, float]] = []
        if domain.mttf is not None:
            fail, back = replica_failures(rng, 1, horizon, domain.mttf, domain.shape, repair.kind, repair.mean,
                                          repair.cv)
            events += [(float(a), float(b) - float(a)) for a, b in zip(fail, back, strict=True)]
        if domain.at:
            lengths = draw_repair(rng, len(domain.at), repair.kind, repair.mean, repair.cv)
            events += [(float(t), float(d)) for t, d in zip(domain.at, lengths, strict=True)]
        return sorted(events)

    def _domain(self, domain: FailureDomain, members: list[tuple[PoolRuntime, range]],
                events: list[tuple[float, float]]):
        """Apply the domain's events: every member replica goes down together."""
        env = self.env
        for start, duration in events:
            if start >= self.scenario.duration:
                return
            if start > env.now:
                yield env.timeout(start - env.now)
            for pool, indices in members:
                covered, taken = self._covered[pool.index], self._taken[pool.index]
                info = pool.info
                for i in indices:
                    covered[i] += 1
                    hit = "down"  # already down: another event covering it, or its own failure
                    if covered[i] == 1 and not taken[i]:
                        hit = self._take_one(pool, None)
                        taken[i] = hit != "down"
                    self.bus.emit(FailureRecord(domain.kind, info.region, info.name, 1, start, start + duration,
                                                hit, domain.name))
            self._domain_repair_later(members, duration)

    def _domain_repair_later(self, members: list[tuple[PoolRuntime, range]], duration: float) -> None:
        UrgentTimeout(self.env, duration, lambda _event: self._domain_repaired(members))

    def _domain_repaired(self, members: list[tuple[PoolRuntime, range]]) -> None:
        """An event of the domain ended: replicas no other event covers come back."""
        for pool, indices in members:
            covered = self._covered[pool.index]
            for i in indices:
                covered[i] -= 1
                self._release(pool, i)

    # -- region outages ------------------------------------------------------------------
    def _outages(self, region: str, members: list[PoolRuntime], spans: list[tuple[float, float]],
                 expected: list[float]):
        env = self.env
        for (start, end), expected_end in zip(spans, expected, strict=True):
            if start >= self.scenario.duration:
                return
            if start > env.now:
                yield env.timeout(start - env.now)
            self.bus.emit(FailureRecord("region", region, "*", sum(p.info.replicas for p in members),
                                        start, end, "region"))
            serving = {p.index: self._serving(p) for p in members}
            # First, so that training stops by failure, not by preemption.
            self.bus.emit(RegionDown(env.now, region, tuple(p.index for p in members), expected_end))
            for pool in members:
                pool.set_dark(True)
                self._changed(pool, "outage")
            for pool in members:
                everything = max(serving[pool.index], 1)
                self.bus.emit(ReplicaFailed(env.now, pool.index, "region", everything, everything, 0.0))
            self._detect_later(members, dark=1)
            yield env.timeout(end - env.now)
            for pool in members:
                pool.set_dark(False)
                self._changed(pool, "outage_end")
            self._detect_later(members, dark=-1)

    # -- links and partitions -------------------------------------------------------------
    def _edges(self, cut) -> set[frozenset[str]]:
        graph = self.routes.base.graph
        if cut.regions is None:
            return {frozenset((cut.a, cut.b))} if graph.has_edge(cut.a, cut.b) else set()
        group = set(cut.regions)
        return {frozenset((u, v)) for u, v in graph.edges if (u in group) != (v in group)}

    def _links(self, cut):
        env = self.env
        yield env.timeout(cut.at)
        edges = self._edges(cut)
        where = "|".join(cut.regions) if cut.regions is not None else f"{cut.a}-{cut.b}"
        kind = "link" if cut.regions is None else "partition"
        self.bus.emit(FailureRecord(kind, where, "*", 0, env.now, cut.at + cut.duration, kind))
        self.routes.cut(edges)
        yield env.timeout(cut.duration)
        self.routes.cut(edges, cut=False)
