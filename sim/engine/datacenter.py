"""Datacenters at run time: each GPU pool's active capacity and use.

A :class:`PoolRuntime` is the live counterpart of a static
:class:`~sim.world.PoolInfo` and the only owner of its state. The scheduler sets how many
replicas should be active (its target); the failure model takes replicas down and brings
them back through the methods below. The replicas that serve are
``min(target - lost, up, provisioned)``: ``up`` counts replicas not failed (0 while the
region is dark), ``lost`` counts serving replicas that failed and whose failure is not yet
detected (then a healthy replica is asked for in their place, serving after the warm-up),
and ``provisioned`` counts the replicas the autoscaler holds warm (all of them when the
pool is not autoscaled). Every
change is published as a :class:`~sim.records.CapacityChanged` record naming its cause;
the serving and training engines react to those records.

Without request-level workloads a pool's busy GPUs are the load-model demand it carries:
its own share (``demand_gpus``) as far as its active capacity allows, plus, when the
scheduler asks (:meth:`PoolRuntime.carry`), demand that other pools cannot carry yet
(they are warming up or failed) and its own active capacity can.

Public: ``PoolRuntime``.
"""
from __future__ import annotations

from sim.engine.bus import Bus
from sim.records import CapacityCause, CapacityChanged
from sim.world import PoolInfo

__all__ = ["PoolRuntime"]


class PoolRuntime:
    """Active replicas and busy GPUs of one pool."""

    def __init__(self, info: PoolInfo, bus: Bus, index: int = 0):
        self.info = info
        self.index = index
        self.active_replicas = info.replicas  # serving now
        self.target = info.replicas  # what the scheduler asked for (applied)
        self.desired = info.replicas  # its latest wish (held back while warming)
        self.warm_until = -1.0  # until then the target may fall but not rise (replicas warming)
        self.hold_until = -1.0  # until then it may rise but not fall (others warming to take over)
        self.down = 0  # failed replicas
        self.dark = 0  # outages of the region in progress
        self.lost = 0
        self.busy_gpus = 0.0
        self.demand_gpus = 0.0  # the load-model demand the scheduler placed on this pool
        self._busy_wish = 0.0  # demand it is asked to carry (its own, or more on a rebalance)
        self.share = 0.0
        self.provisioned = info.replicas  # warm replicas the autoscaler holds (all: not autoscaled)
        self._bus = bus

    @property
    def up(self) -> int:
        """Replicas able to run (not failed, region not dark)."""
        return 0 if self.dark else max(self.info.replicas - self.down, 0)

    @property
    def active_gpus(self) -> int:
        return self.active_replicas * self.info.gpus_per_replica

    # -- the scheduler ----------------------------------------------------------------------
    def set_state(self, t_s: float, active_replicas: int, busy_gpus: float, share: float,
                  cause: CapacityCause = "scheduler") -> None:
        """Apply a scheduler decision and announce it. While the pool warms up after a
        failover (``t_s < warm_until``) the target may fall but not rise; while others warm
        up to take its load (``t_s < hold_until``) it may rise but not fall."""
        if not 0 <= active_replicas <= self.info.replicas:
            raise ValueError(f"{self.info.key}: active replicas {active_replicas} outside 0..{self.info.replicas}")
        self.desired = active_replicas
        if t_s < self.warm_until:
            self.target = min(active_replicas, self.target)
        elif t_s < self.hold_until:
            self.target = max(active_replicas, self.target)
        else:
            self.target = active_replicas
        self.demand_gpus = self._busy_wish = busy_gpus
        self.share = share
        self.refresh(t_s, cause)

    def carry(self, t_s: float, busy_gpus: float) -> None:
        """Carry ``busy_gpus`` of demand from now on (the scheduler moves demand that pools
        still warming up, or failed, cannot carry onto active capacity with room). Announced
        only when the busy GPUs change."""
        self._busy_wish = busy_gpus
        if min(busy_gpus, float(self.active_gpus)) != self.busy_gpus:
            self.refresh(t_s, "rebalanced")

    def rises_to(self, replicas: int, t_s: float) -> bool:
        """Would ``replicas`` go beyond what the pool serves or is already warming towards?"""
        ceiling = max(self.target, self.desired) if t_s < self.warm_until else self.target
        return replicas > ceiling

    def warm_up_until(self, t_s: float) -> None:
        """Replicas it activates now serve only from ``t_s`` (a failover's warm-up)."""
        self.warm_until = max(self.warm_until, t_s)

    def hold_until_time(self, t_s: float) -> None:
        """Keep serving at least the current target until ``t_s`` (others are warming)."""
        self.hold_until = max(self.hold_until, t_s)

    def warmed(self, t_s: float) -> None:
        """A failover warm-up (or a hold) ended: apply the scheduler's latest wish."""
        if t_s >= self.warm_until and t_s >= self.hold_until and self.desired != self.target:
            self.target = self.desired
            self.refresh(t_s, "warmed")

    # -- the autoscaler --------------------------------------------------------------------
    def provision(self, t_s: float, replicas: int) -> None:
        """The autoscaler holds ``replicas`` warm replicas from now on (announced)."""
        if not 0 <= replicas <= self.info.replicas:
            raise ValueError(f"{self.info.key}: provisioned replicas {replicas} outside 0..{self.info.replicas}")
        self.provisioned = replicas
        self.refresh(t_s, "autoscaler")

    # -- the failure model ----------------------------------------------------------------
    def take_down(self, serving: bool) -> None:
        """One replica failed (``serving``: one that served requests). Announced by the
        caller's :meth:`refresh`, once whoever the failure struck has reacted."""
        self.down += 1
        if serving:
            self.lost += 1

    def bring_up(self) -> None:
        """One failed replica was repaired (announce with :meth:`refresh`)."""
        self.down -= 1

    def set_dark(self, outage_begins: bool) -> None:
        """An outage of the region begins or ends (announce with :meth:`refresh`)."""
        self.dark += 1 if outage_begins else -1

    def replace_lost(self, until: float) -> None:
        """A failed serving replica was detected: it stops counting as lost and a healthy
        replica is asked for in its place, serving from ``until`` (the scheduler's next
        decision sees the failure too, so nothing is taken out twice)."""
        if self.lost > 0:
            self.lost -= 1
            self.target = max(self.target - 1, 0)
            self.warm_until = max(self.warm_until, until)

    # -- announcing ------------------------------------------------------------------------
    def refresh(self, t_s: float, cause: CapacityCause) -> None:
        """Recompute the serving replicas after a decision, a failure or a repair; announce."""
        self.active_replicas = max(min(self.target - self.lost, self.up, self.provisioned), 0)
        self.busy_gpus = min(self._busy_wish, float(self.active_gpus))
        info = self.info
        self._bus.emit(CapacityChanged(t_s, info.region, info.name, self.share, self.active_gpus, self.busy_gpus,
                                       self.up * info.gpus_per_replica, cause, self.index))
