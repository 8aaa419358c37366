"""Event records: the typed facts a simulation publishes, one type per fact.

The engine emits each record at the simulated moment the fact happens; observers (the
metrics, a user's tracer) subscribe by type and never see an engine object. Engines also
react to each other's facts through the same stream (a failure strikes, routes change),
never by writing into each other's fields. Records are frozen, plain data and importable
from every layer: this module imports nothing from Meridian.

Capacity and the scheduler:
``LoadSample`` (a scheduler decision), ``CapacityChanged`` (a pool's active capacity and
why it changed), ``TrainingUsage`` (GPUs training holds on a pool).

Autoscaling: ``ColdStart`` (replicas begin a cold start), ``ReplicasReady`` (they finished
it), ``ProvisionChanged`` (a pool's provisioned and starting replicas, and why).

Requests (bulk, once): ``RequestLog`` (per-request outcome arrays) with ``RequestStatus``,
``BatchLog`` (what the batching replicas did); ``RequestsDisplaced`` (requests a failure
took off a pool).

Training and data: ``JobChanged`` (a job's lifecycle), ``JobRecord`` (a job's totals, when
it completes or when the run ends), ``TransferRecord``, ``BorderCrossing``,
``ResidencyViolation``, ``TransfersUnfinished`` (copies still on their way when the run ends).

Failures and routes: ``FailureRecord`` (a failure begins; a failure domain's event, one per
member replica), ``ReplicaFailed`` (what one struck), ``RegionDown``, ``FailureDetected``
(the scheduler learns of a change), ``RoutesChanged``.

Model versions: ``VersionReleased``, ``RolloutRecord``.

Public: every record type above, ``Record`` (their union), ``RequestStatus``,
``FAILURE_CAUSES``, and the CSV column tuples ``JOB_COLUMNS``, ``TRANSFER_COLUMNS``,
``CROSSING_COLUMNS``, ``FAILURE_COLUMNS``, ``ROLLOUT_COLUMNS``, ``COLD_START_COLUMNS``,
``PROVISION_COLUMNS``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Literal

import numpy as np

__all__ = ["LoadSample", "CapacityChanged", "TrainingUsage", "ColdStart", "ReplicasReady", "ProvisionChanged",
           "ProvisionCause", "RequestStatus", "RequestLog", "BatchLog",
           "RequestsDisplaced",
           "JobChanged", "JobRecord", "TransferRecord", "BorderCrossing", "ResidencyViolation", "TransfersUnfinished",
           "FailureRecord",
           "ReplicaFailed", "RegionDown", "FailureDetected", "RoutesChanged", "VersionReleased", "RolloutRecord",
           "Record", "CapacityCause", "FAILURE_CAUSES", "JOB_COLUMNS", "TRANSFER_COLUMNS", "CROSSING_COLUMNS",
           "FAILURE_COLUMNS", "ROLLOUT_COLUMNS", "COLD_START_COLUMNS", "PROVISION_COLUMNS"]


# -- capacity and the scheduler ------------------------------------------------------------
@dataclass(frozen=True)
class LoadSample:
    """The scheduler evaluated the load and allocation models at time ``t_s``."""

    t_s: float
    load: float
    resources: float
    demand_gpus: float
    unmet_gpus: float
    forecast: float = float("nan")  # with an observed load model: its formula's value
    observed: float = float("nan")  # with an observed load model: the measured estimate


CapacityCause = Literal["start", "scheduler", "failover", "warmed", "rebalanced", "failure", "replica_lost",
                        "repair", "outage", "outage_end", "detected", "autoscaler"]
# Causes that come from the failure model (a replica or region went down or came back, or
# a failure was detected): the points where a pool's up capacity may change.
FAILURE_CAUSES = frozenset({"failure", "replica_lost", "repair", "outage", "outage_end", "detected"})


@dataclass(frozen=True)
class CapacityChanged:
    """From ``t_s`` on, pool ``region/pool`` has this active capacity and use.

    ``cause``: ``start`` (no scheduler: everything active), ``scheduler`` (a periodic
    decision), ``failover`` (a decision after a detected failure), ``warmed`` (a warm-up or
    hold ended), ``rebalanced`` (without request-level workloads: the demand the pool
    carries moved because other pools' active capacity changed), ``failure`` (a replica
    or, with ``outage``, the region went down under idle or training capacity),
    ``replica_lost`` (a serving replica failed), ``repair``,
    ``outage_end``, ``detected`` (a failed serving replica is being replaced), ``autoscaler``
    (the replicas provisioned and warm changed: a cold start ended, or a scale-down)."""

    t_s: float
    region: str
    pool: str
    share: float
    active_gpus: int
    busy_gpus: float
    up_gpus: int | None = None  # GPUs on replicas not failed (None: not reported, all up)
    cause: CapacityCause = "scheduler"
    pool_index: int = -1  # the pool's position in the world (for engines; -1 when hand-made)


@dataclass(frozen=True)
class TrainingUsage:
    """From ``t_s`` on, training jobs hold ``gpus`` GPUs of pool ``region/pool``."""

    t_s: float
    region: str
    pool: str
    gpus: int


# -- autoscaling ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ColdStart:
    """At ``t_s`` the autoscaler began the cold start of ``replicas`` replicas of pool
    ``region/pool``: provisioning, then ``weights_bytes`` read at ``load_gbps`` Gbit/s from
    region ``source`` (the pool's own for local storage). They serve from ``ready_s``."""

    t_s: float
    region: str
    pool: str
    pool_index: int
    replicas: int
    provisioning_s: float
    load_s: float  # weights_bytes * 8 / (load_gbps * 1e9)
    weights_bytes: float
    load_gbps: float
    source: str

    @property
    def ready_s(self) -> float:
        return self.t_s + self.provisioning_s + self.load_s


@dataclass(frozen=True)
class ReplicasReady:
    """``replicas`` replicas of pool ``region/pool`` whose cold start began at ``started_s``
    are warm and serve from ``t_s``."""

    t_s: float
    region: str
    pool: str
    pool_index: int
    replicas: int
    started_s: float


ProvisionCause = Literal["initial", "scale_up", "ready", "scale_down", "cancelled"]


@dataclass(frozen=True)
class ProvisionChanged:
    """From ``t_s`` on, the autoscaler holds ``ready`` warm replicas and ``starting`` replicas
    in a cold start for pool ``region/pool`` (both are paid for); ``desired`` is its policy's
    latest wish. ``cause``: ``initial`` (the start of the run), ``scale_up`` (cold starts
    began), ``ready`` (some finished), ``scale_down`` (warm replicas released),
    ``cancelled`` (cold starts abandoned by a scale-down)."""

    t_s: float
    region: str
    pool: str
    pool_index: int
    ready: int
    starting: int
    desired: int
    cause: ProvisionCause


# -- requests ------------------------------------------------------------------------------
class RequestStatus(IntEnum):
    """Outcome of a request, stored as int8 in :attr:`RequestLog.status`."""

    PENDING = 0
    COMPLETED = 1
    REJECTED = 2  # routing found no pool
    TIMED_OUT = 3  # queued longer than its workload's timeout
    IN_FLIGHT = 4  # travelling, queued or in service when the run ended
    FAILED = 5  # lost to a failure (not retried, or out of retries)


@dataclass(frozen=True)
class RequestLog:
    """Per-request outcome arrays (index = request number in time order), published once
    when the run ends."""

    t_s: np.ndarray          # arrival at the origin
    origin: np.ndarray       # region index
    workload: np.ndarray
    pool: np.ndarray         # pool index, -1 if rejected before routing
    rtt_ms: np.ndarray       # path RTT origin <-> pool
    wait_s: np.ndarray       # time queued at the pool (NaN while still queued); if timed out, until it was dropped
    service_s: np.ndarray    # service time at the chosen pool (NaN if never routed)
    status: np.ndarray       # int8, see RequestStatus
    retry_s: np.ndarray      # time from arrival to the last routing (a retry after a failure), else 0
    first_token_s: np.ndarray  # from reaching the pool to the first output token (NaN: none, or not a token workload)
    tpot_s: np.ndarray       # mean time between output tokens after the first (NaN: one token, or none)
    prefix: np.ndarray       # int32, the shared prompt it opens with (-1: none)
    cached_tokens: np.ndarray  # int32, prompt tokens a replica's prefix cache spared its prefill (first admission)
    # Conversations (empty arrays when no workload has sessions): the session a request
    # belongs to (numbered by its first turn's arrival, -1: none) and its turn (1, 2, ...).
    session: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    turn: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    # Prefill/decode disaggregation (empty arrays without it): the decode pool a request's
    # KV cache went to (-1: none), how long its transfer took, s (NaN: none), and the path
    # RTT between the origin and that decode pool when it left, ms (NaN: none).
    decode_pool: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    kv_transfer_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    decode_rtt_ms: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def pool_arrival_s(self) -> np.ndarray:
        return self.t_s + self.retry_s + self.rtt_ms / 2000.0

    @property
    def latency_ms(self) -> np.ndarray:
        return self.rtt_ms + (self.retry_s + self.wait_s + self.service_s) * 1000.0

    @property
    def ttft_ms(self) -> np.ndarray:
        """Time to first token as the user sees it: network both ways, queue, prefill."""
        return self.rtt_ms + (self.retry_s + self.first_token_s) * 1000.0


@dataclass(frozen=True)
class BatchLog:
    """What the batching replicas did, published once when the run ends: one row per
    segment (one iteration, or a run of decode iterations of an unchanged batch), plus
    per-pool figures for the pools listed in ``pools``."""

    pool: np.ndarray            # int16, pool index of the segment
    replica: np.ndarray         # int32, replica within the pool
    start_s: np.ndarray         # float64
    end_s: np.ndarray           # float64
    seqs: np.ndarray            # int32, sequences in each iteration of the segment
    prefill_tokens: np.ndarray  # float64, prompt tokens prefilled in the segment
    output_tokens: np.ndarray   # float64, output tokens generated in the segment
    kv_tokens: np.ndarray       # int64, KV cache in use at the segment's end, before sequences left
    pools: np.ndarray           # int16, the batching pools
    kv_capacity: np.ndarray     # int64, KV tokens per replica, per batching pool
    preemptions: np.ndarray     # int64, sequences preempted (recomputed later), per batching pool


@dataclass(frozen=True)
class RequestsDisplaced:
    """A failure took requests off pool ``region/pool``: ``retried`` were routed again,
    ``lost`` were dropped."""

    t_s: float
    region: str
    pool: str
    retried: int
    lost: int


# -- training and data ---------------------------------------------------------------------
JobEvent = Literal["submitted", "placed", "started", "preempted", "interrupted", "waiting", "completed"]


@dataclass(frozen=True)
class JobChanged:
    """A training job's lifecycle: ``submitted`` (queued on arrival), ``placed`` (GPUs
    assigned; its data may still be copying), ``started`` (computing, or restoring a
    checkpoint), ``preempted`` / ``interrupted`` (stopped and requeued, keeping or losing
    the work since its last checkpoint), ``waiting`` (queued, held back until its newest
    checkpoint can be reached again: cheaper than redoing the work), ``completed``. ``region`` is where it runs (or
    ran), empty while queued."""

    t_s: float
    job: int
    workload: str
    event: JobEvent
    region: str = ""


@dataclass(frozen=True)
class JobRecord:
    """One training job's totals (a row of jobs.csv): published when it completes, and for
    every other job when the run ends."""

    job: int
    workload: str
    arrival_s: float
    start_s: float        # first start (NaN if it never started)
    end_s: float          # completion (NaN if not completed)
    regions: str          # regions of its last placement, ';'-separated
    pools: str            # region/pool:gpus of its last placement
    gpus: int
    wait_s: float         # total time queued (all attempts)
    transfer_s: float     # total time waiting for its dataset to arrive
    lost_gpu_h: float     # GPU-hours of work lost to interruptions (since the last checkpoint)
    held_gpu_h: float     # GPU-hours its GPUs were held (transfers, restarts, checkpoints, compute)
    useful_gpu_h: float   # GPU-hours of computation not lost to interruptions
    preemptions: int
    interruptions: int
    status: str           # completed, running, queued
    work: float           # work units of the job
    remaining: float      # work units left


@dataclass(frozen=True)
class TransferRecord:
    """A copy over the WAN landed (a row of transfers.csv): a dataset, a checkpoint
    (``checkpoint:<job>``) or a copy of the ``transfers`` section (its dataset, else
    ``copy:<name>``; ``job`` -1)."""

    transfer: int
    dataset: str
    job: int
    src: str
    dst: str
    route: str  # the path its last byte took
    bytes: float
    start_s: float
    end_s: float
    cost_usd: float
    priority: int = 0
    interruptions: int = 0  # times a cut link stopped it
    hops: tuple[str, ...] = ()  # the regions of ``route`` (names may hold hyphens)


@dataclass(frozen=True)
class BorderCrossing:
    """Bytes that crossed a jurisdiction border on one hop (a row of border_crossings.csv)."""

    t_s: float
    dataset: str
    src: str
    dst: str
    bytes: float
    src_jurisdiction: str
    dst_jurisdiction: str


@dataclass(frozen=True)
class TransfersUnfinished:
    """When the run ends at ``t_s``: the copies started and not landed (sending, in their
    latency phase, or stopped by a cut link and waiting for a path), and their bytes."""

    t_s: float
    transfers: int
    bytes: float


@dataclass(frozen=True)
class ResidencyViolation:
    """A copy of ``dataset`` to ``region`` began although a soft residency rule forbids it."""

    t_s: float
    dataset: str
    region: str


# -- failures and routes -------------------------------------------------------------------
@dataclass(frozen=True)
class FailureRecord:
    """A failure began: a replica (``node``), a replica of a failure domain (``rack``,
    ``power`` or ``software``: one record per member replica, ``domain`` naming it), a whole
    region, a link or a partition."""

    kind: str  # "node", "rack", "power", "software", "region", "link" or "partition"
    region: str
    pool: str  # "*" for a region
    replicas: int
    start_s: float
    end_s: float  # repair or end of the outage (may lie after the run)
    hit: str  # node, domain: inference, training, idle, dark (region already out), down; else the kind
    domain: str = ""  # the failure domain whose event this is ("" for other failures)


@dataclass(frozen=True)
class ReplicaFailed:
    """Replicas of pool ``pool_index`` failed under ``hit``: ``inference`` (serving
    replicas, ``replicas`` of the ``serving_before`` that served), ``training`` (the GPU
    ``offset_gpus`` counted over the pool's training GPUs, jobs in id order) or ``region``
    (an outage took every serving replica). ``u`` is the uniform draw that picks, among a
    replica's share of the requests in service, how many are lost when it is fractional."""

    t_s: float
    pool_index: int
    hit: Literal["inference", "training", "region"]
    replicas: int = 1
    serving_before: int = 0
    u: float = 0.0
    offset_gpus: float = 0.0


@dataclass(frozen=True)
class RegionDown:
    """An outage takes every replica of ``region`` down (published before its pools go dark).
    ``expected_end_s``: when it is expected to end, as operators would know it: the end of a
    scheduled outage, the start plus the mean length of a random one."""

    t_s: float
    region: str
    pool_indices: tuple[int, ...]
    expected_end_s: float = float("inf")


@dataclass(frozen=True)
class FailureDetected:
    """After the detection delay the scheduler learns that pools' failed replicas changed
    by ``down`` and their region outages by ``dark`` (negative: a repair, a return)."""

    t_s: float
    pool_indices: tuple[int, ...]
    down: int = 0
    dark: int = 0


@dataclass(frozen=True)
class RoutesChanged:
    """Links failed or came back: the new path RTTs (region x region, ms, inf when cut
    off, in the world's region order) and the regions that reach no serving pool."""

    t_s: float
    rtt_ms: np.ndarray
    unreachable: tuple[str, ...]


# -- model versions ------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionReleased:
    """Model version ``version`` was released from ``source``."""

    t_s: float
    version: int
    source: str


@dataclass(frozen=True)
class RolloutRecord:
    """One model version in one serving region: published when every region has it, or
    when the run ends (``inf``: not yet)."""

    version: int
    source: str
    region: str
    start_s: float  # release
    landed_s: float  # its copy arrived (inf: not yet)
    switched_s: float  # the region serves it from then on (inf: not yet)


Record = (LoadSample | CapacityChanged | TrainingUsage | ColdStart | ReplicasReady | ProvisionChanged
          | RequestLog | BatchLog | RequestsDisplaced | JobChanged
          | JobRecord | TransferRecord | BorderCrossing | ResidencyViolation | TransfersUnfinished | FailureRecord
          | ReplicaFailed
          | RegionDown | FailureDetected | RoutesChanged | VersionReleased | RolloutRecord)


def _columns(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type))


JOB_COLUMNS = _columns(JobRecord)
TRANSFER_COLUMNS = tuple(c for c in _columns(TransferRecord) if c != "hops")  # route says it in the CSV
CROSSING_COLUMNS = _columns(BorderCrossing)
FAILURE_COLUMNS = _columns(FailureRecord)
ROLLOUT_COLUMNS = _columns(RolloutRecord)
COLD_START_COLUMNS = _columns(ColdStart)
PROVISION_COLUMNS = _columns(ProvisionChanged)
