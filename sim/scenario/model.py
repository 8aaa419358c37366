"""The scenario schema: what a capacity planner may write, validated by pydantic v2.

Every model forbids unknown keys, is frozen once built and is strict about types (a number
where a number is expected; YAML strings like ``NO`` stay strings). Durations are written
as ``500ms``, ``90s``, ``15m``, ``24h``, ``7d`` or a number of seconds and are held in
seconds. Each field carries a description that ends up in the JSON Schema (``simulate.py
schema``) and in ``scenarios/README.md``.

Public: ``Scenario`` and its parts ``Region``, ``Pool``, ``Link``, ``Network``,
``Scheduler``, ``Allocation``, ``LoadModel`` (a union of ``LinearLoad``, ``ConstantLoad``,
``DiurnalLoad``, ``StepLoad``, ``PiecewiseLoad``), ``Metrics``, ``Duration``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, PlainSerializer, Tag, model_validator

from sim.scenario.kinds import POLICY_KINDS
from sim.units import parse_duration

__all__ = [
    "Duration", "Pool", "PoolAutoscale", "Autoscaling", "Host", "Region", "Link", "Network", "LinearLoad",
    "ConstantLoad",
    "DiurnalLoad", "StepLoad", "PiecewisePoint", "PiecewiseLoad", "ObservedLoad", "Profile",
    "LoadModel", "Allocation", "PoissonArrival", "TraceArrival", "Arrival", "ConstantService",
    "ExponentialService", "LognormalService", "EmpiricalService", "TokenCount",
    "TokenCoefficients", "TokenService", "Service", "InferenceWorkload", "Residency", "Dataset",
    "Checkpoint", "GpuChoice", "GpuHoursWork", "StepsWork", "PhillyWork", "Work", "PoissonJobs",
    "GavelTrace", "AlibabaTrace", "JobSource", "TrainingWorkload", "PolicySpec",
    "Scheduler", "Metrics", "Copy", "Transfers", "RepairTime", "NodeFailures", "FailureDomain", "RegionOutage",
    "LinkFailure", "Failures",
    "Consistency", "replica_range",
    "Scenario",
]

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(float, return_type=float),
    Field(json_schema_extra={"anyOf": [{"type": "number"}, {
        "type": "string", "pattern": r"^[0-9.]+\s*(ms|s|m|h|d)$"}]}),
]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
# A coefficient of variation beyond this is no distribution anyone measured; near 1e154 its
# square overflows and the lognormal draws NaN (a negative token count, a traceback).
MAX_CV = 100.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Serving(_Model):
    """Each replica is a batching LLM server (vLLM-like): continuous batching, KV-cache memory,
    chunked prefill. Defaults follow vLLM's."""

    model: str = Field(description="Served model from the catalogue (Llama-2-70B, Llama-3.1-8B, Llama-3.1-70B, "
                       "Llama-3.1-405B-FP8, Mixtral-8x7B, BLOOM-176B); see docs/serving_model.md.")
    tensor_parallel: int | None = Field(None, ge=1, le=1024, description="GPUs one replica spans (default: "
                                        "gpus_per_replica; if given it must equal it).")
    max_batch: int = Field(256, ge=1, le=1_000_000,
                           description="Sequences a replica runs at once at most (vLLM max_num_seqs).")
    max_batched_tokens: int = Field(8192, ge=1, description="Tokens one iteration processes at most (vLLM "
                                    "max_num_batched_tokens): decodes plus prefill chunks.")
    chunked_prefill: bool = Field(True, description="Split prompts into chunks that share iterations with decodes; "
                                  "without it an iteration either prefills whole prompts or decodes.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Fraction of GPU memory the server uses; "
                                          "what the weights leave of it holds the KV cache.")
    prefix_caching: bool = Field(True, description="Keep the KV cache of shared prompts after their requests end "
                                 "(LRU, in free KV memory) and skip their prefill on a hit (vLLM's automatic "
                                 "prefix caching).")
    prefix_cache_tokens: int | None = Field(None, ge=1, description="Cap on the tokens the prefix cache holds "
                                            "(none: whatever KV memory is free).")
    dispatch: Literal["least_outstanding", "cache_affinity"] = Field(
        "least_outstanding", description="How a request picks a replica of the pool: the fewest outstanding "
        "requests, or (cache_affinity) among replicas that hold its shared prompt, the least busy unless it has "
        "more than max_batch / 4 requests above the least busy replica.")
    role: Literal["both", "prefill", "decode"] = Field(
        "both", description="Prefill/decode disaggregation: a prefill pool computes prompts and their first "
        "token, then sends the KV cache to the nearest decode pool of the same model (over the network: "
        "KV bytes per token x context); a decode pool takes no requests from routing, only those KV caches.")


class PoolAutoscale(_Model):
    """Bounds and cold-start costs of an autoscaled pool (with ``scheduler.autoscaling``).

    A replica the autoscaler adds serves after its cold start: ``provisioning_s`` (a VM or
    node allocated, containers pulled) plus ``weights / load bandwidth``, the model's weight
    bytes read from local disk at ``load_gbps`` or, with ``weights_from: nearest``, over the
    WAN from the nearest other region serving the same model at min(``load_gbps``, the
    path's bottleneck link)."""

    min: int = Field(0, ge=0, le=1_000_000, description="Replicas always provisioned (never scaled below; 0: "
                     "the pool scales to zero and holds requests nothing else can take for a cold start).")
    max: int | None = Field(None, ge=1, le=1_000_000, description="Replicas provisioned at most (default: "
                            "the pool's replicas; at most that).")
    initial: int | None = Field(None, ge=0, le=1_000_000, description="Replicas provisioned and warm at the "
                                "start (default: min).")
    provisioning_s: Duration = Field(0.0, ge=0, description="Time to obtain and boot a replica before its "
                                     "weights load.")
    load_gbps: float = Field(10.0, gt=0, description="Bandwidth a replica loads its weights at, Gbit/s (local "
                             "disk or network storage; over the WAN also capped by the path).")
    group: str | None = Field(None, description="The region's gpu_groups entry whose GPUs this pool shares "
                              "with others (none: its own replicas).")
    weights_from: Literal["local", "nearest"] = Field(
        "local", description="local: the weights are on local storage; nearest: fetched over the WAN from the "
        "nearest other region with a pool serving the same model.")
    weights_gb: float | None = Field(None, ge=0, description="Weight bytes to load, GB (10^9 bytes) (default: "
                                     "the served model's parameters x bytes per weight; required without a "
                                     "serving section).")


class Pool(_Model):
    """A pool of identical GPU replicas (a replica is one serving/training instance)."""

    name: Name = Field(description="Pool name, unique within its region.")
    gpu: str = Field(description="GPU type from the built-in catalogue (A100, H100, H200, B200, MI300X, ...).")
    replicas: int = Field(ge=1, le=1_000_000, description="Number of replicas in the pool.")
    gpus_per_replica: int = Field(8, ge=1, le=1024, description="GPUs in one replica.")
    slots_per_replica: int = Field(1, ge=1, le=1_000_000, description="Requests one replica serves concurrently.")
    serves: Literal["both", "inference", "training"] = Field(
        "both", description="Workloads the pool may run; inference has priority on shared pools.")
    serving: Serving | None = Field(None, description="Batching LLM servers (none: each replica serves "
                                    "slots_per_replica requests at a time at batch-1 speed).")
    autoscale: PoolAutoscale | None = Field(None, description="Autoscaling bounds and cold start (with "
                                            "scheduler.autoscaling; none: the pool is not autoscaled).")


class Host(_Model):
    """A named machine (or NIC) inside a region, for studies where copies between hosts, or
    a host's network card, matter."""

    name: Name = Field(description="Host name, unique within its region; copies name it `region/host`.")
    nic_gbps: float = Field(gt=0, description="Its network card's bandwidth, Gbit/s each direction.")


class GpuGroup(_Model):
    """GPUs that several autoscaled pools of a region share (pools of different models on
    one cluster): together they never hold more than ``gpus``; a model grows into GPUs
    another one released, paying its own cold start (weights loaded)."""

    name: Name = Field(description="Group name, unique within its region; pools join it with autoscale.group.")
    gpus: int = Field(ge=1, le=100_000_000, description="GPUs the group's pools share (installed once: "
                      "utilisation, energy).")


class Region(_Model):
    """A datacenter region. Fields left out are taken from the region catalogue when the
    name is a known cloud region (``eastus``, ``eu-west-1``, ...), else from the defaults."""

    name: Name = Field(description="Region name; a catalogue name inherits coordinates, offset, jurisdiction, carbon.")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude, degrees north.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude, degrees east.")
    utc_offset_h: float | None = Field(None, ge=-12, le=14, description="Local standard time minus UTC, hours.")
    jurisdiction: str | None = Field(
        None, min_length=1, description="Legal jurisdiction for data residency (e.g. US, EU).")
    intra_rtt_ms: float | None = Field(
        None, ge=0, description="Round-trip time inside the region, ms (default: catalogue, else 1.0).")
    price_usd_per_kwh: float = Field(0.10, ge=0, description="Electricity price, USD per kWh.")
    carbon_g_per_kwh: float | None = Field(
        None, ge=0, description="Grid carbon intensity, gCO2e per kWh (default: catalogue, else 450).")
    pue: float = Field(1.2, ge=1.0, le=3.0, description="Power usage effectiveness of the datacenter.")
    pools: list[Pool] = Field(
        default_factory=list, description="GPU pools; a region with none only originates traffic.")
    hosts: list[Host] = Field(
        default_factory=list, description="Named hosts with their NIC bandwidth, for copies between hosts "
        "(none: the region is one node and copies inside it are free).")
    gpu_groups: list[GpuGroup] = Field(
        default_factory=list, description="GPUs shared by autoscaled pools of this region (several models on "
        "one cluster).")


class Link(_Model):
    """A network link between two regions; by default it carries each direction at its full
    bandwidth (full duplex)."""

    a: str = Field(description="One end (region name).")
    b: str = Field(description="Other end (region name).")
    rtt_ms: float | None = Field(
        None, gt=0, description="Round-trip time, ms (default: measured catalogue RTT, else the great-circle fit).")
    bandwidth_gbps: float | None = Field(
        None, gt=0, description="Capacity of each direction, Gbit/s (default: network.default_bandwidth_gbps).")
    duplex: Literal["full", "half"] | None = Field(
        None, description="full: each direction carries bandwidth_gbps; half: one capacity shared by both "
        "directions (a shared medium) (default: network.duplex).")


class Network(_Model):
    """How the inter-region graph is formed."""

    mesh: Literal["auto", "full", "explicit"] = Field(
        "auto", description="full: every pair linked; explicit: only `links`; "
                            "auto: explicit if `links` is non-empty, else full.")
    default_bandwidth_gbps: float = Field(100.0, gt=0, description="Bandwidth of links that do not give one, Gbit/s.")
    sharing: Literal["rtt_weighted", "max_min"] = Field(
        "rtt_weighted",
        description="How concurrent transfers share links with model raw: max-min fair, weighted by 1/RTT "
        "(TCP-like, SimGrid's raw) or plain.")
    model: Literal["raw", "lv08"] = Field(
        "raw", description="Flow model: raw (latency + size / fair share; SimGrid's raw) or lv08 (SimGrid's "
        "default TCP model, Velho et al. 2013: latency x 13.01 for slow start, 97 % of the share, weights by "
        "latency + 20537 B / bandwidth per link, 5 % cross-traffic on the reverse path, TCP-window bound).")
    duplex: Literal["full", "half"] = Field(
        "full", description="Links that do not say: full (each direction at full bandwidth, as NICs and WAN "
        "links are) or half (one capacity for both directions).")
    tcp_window_bytes: float | None = Field(
        None, gt=0, description="Largest TCP window of a transfer, bytes: each flow is bounded by window / RTT "
        "(default: none with raw, 4194304 with lv08, SimGrid's network/TCP-gamma).")
    on_cut: Literal["resume", "restart"] = Field(
        "resume", description="A transfer whose path loses a link: goes on from where it was (resume) or from "
        "its first byte (restart), along a new path as soon as one exists.")
    egress_usd_per_gb: float | None = Field(
        None, ge=0, description="Egress price for every inter-region byte (default: cloud price tables).")


class LinearLoad(_Model):
    """The seed's load model L(t) = L0 + alpha * (t - T0), t in hours since the start."""

    kind: Literal["linear"]
    L0: float = Field(description="Load at T0 (load units).")
    alpha: float = Field(0.0, description="Growth, load units per hour.")
    T0: float = Field(0.0, description="Reference time, hours since the start of the run.")


class ConstantLoad(_Model):
    """L(t) = L."""

    kind: Literal["constant"]
    L: float = Field(ge=0, description="Load (load units).")


class DiurnalLoad(_Model):
    """L(t) = mean * (1 + amplitude * cos(2 pi (h - peak_hour) / 24)), h = local hour."""

    kind: Literal["diurnal"]
    mean: float = Field(ge=0, description="Daily mean load (load units).")
    amplitude: float = Field(0.5, ge=0, le=1, description="Relative swing around the mean (0..1).")
    peak_hour: float = Field(14.0, ge=0, lt=24, description="Local hour of the daily peak.")
    utc_offset_h: float | None = Field(
        None, ge=-12, le=14,
        description="Offset of the local time the profile follows, hours (default: UTC for the scheduler, "
                    "each origin's own local time for an arrival profile).")


class StepLoad(_Model):
    """L(t) = before for t < at, after from then on."""

    kind: Literal["step"]
    before: float = Field(ge=0, description="Load before the step.")
    after: float = Field(ge=0, description="Load from the step on.")
    at: Duration = Field(description="Time of the step since the start.")


class PiecewisePoint(_Model):
    at: Duration = Field(description="Time since the start.")
    L: float = Field(ge=0, description="Load at that time.")


class PiecewiseLoad(_Model):
    """Linear interpolation between points; held flat before the first and after the last."""

    kind: Literal["piecewise"]
    points: list[PiecewisePoint] = Field(min_length=1, description="Points in increasing time.")


Profile = Annotated[
    LinearLoad | ConstantLoad | DiurnalLoad | StepLoad | PiecewiseLoad,
    Field(discriminator="kind"),
]
class ObservedLoad(_Model):
    """The seed's feedback loop: L(t) estimated from the arrivals actually measured.

    L = scale * (exponentially weighted arrival rate, requests/s, time constant ``window``);
    before any measurement L = ``initial``."""

    kind: Literal["observed"]
    window: Duration = Field(900.0, gt=0, description="Time constant of the rate estimate.")
    scale: float = Field(1.0, gt=0, description="Load units per request/s.")
    initial: float = Field(0.0, ge=0, description="Load assumed before the first measurement.")
    forecast: Profile | None = Field(
        None, description="A formula recorded beside the observed load, for comparison.")
    drive: Literal["observed", "forecast"] = Field(
        "observed", description="Which of the two sets the allocation (forecast needs `forecast`); both are recorded.")


LoadModel = Annotated[
    LinearLoad | ConstantLoad | DiurnalLoad | StepLoad | PiecewiseLoad | ObservedLoad,
    Field(discriminator="kind"),
]


class PoissonArrival(_Model):
    """Poisson arrivals at rate ``rate_per_s * profile(t)`` (a non-homogeneous process)."""

    process: Literal["poisson"]
    rate_per_s: float = Field(gt=0, description="Base arrival rate, requests per second, summed over origins.")
    profile: Profile | None = Field(
        None, description="Multiplier of the rate over time (same kinds as load models; diurnal follows each origin's "
                          "local time).")


class TraceArrival(_Model):
    """Replay of a CSV in the Azure LLM inference trace format (TIMESTAMP,ContextTokens,GeneratedTokens)."""

    process: Literal["trace"]
    path: str = Field(min_length=1, description="CSV file; a relative path is taken from the scenario file's folder.")
    time_scale: float = Field(
        1.0, gt=0, description="Speed-up of the trace clock (2 = twice as many requests per second).")
    loop: bool = Field(True, description="Repeat the trace to fill the run.")


Arrival = Annotated[PoissonArrival | TraceArrival, Field(discriminator="process")]


class ConstantService(_Model):
    dist: Literal["constant"]
    value_s: float = Field(gt=0, description="Service time, s.")


class ExponentialService(_Model):
    dist: Literal["exponential"]
    mean_s: float = Field(gt=0, description="Mean service time, s.")


class LognormalService(_Model):
    dist: Literal["lognormal"]
    mean_s: float = Field(gt=0, description="Mean service time, s.")
    cv: float = Field(gt=0, le=MAX_CV, description="Coefficient of variation (std / mean).")


class EmpiricalService(_Model):
    dist: Literal["empirical"]
    samples_s: list[Annotated[float, Field(gt=0)]] = Field(
        min_length=1, description="Service times drawn uniformly at random, s.")


class TokenCount(_Model):
    """Token count drawn from a lognormal with this mean and cv (cv 0 = constant), rounded, >= 1."""

    mean: float = Field(gt=0, description="Mean tokens per request.")
    cv: float = Field(0.0, ge=0, le=MAX_CV, description="Coefficient of variation.")


class TokenCoefficients(_Model):
    prefill_ms_per_token: float = Field(ge=0, description="Prefill time per input token, ms.")
    decode_ms_per_token: float = Field(ge=0, description="Decode time per output token, ms.")
    base_ms: float = Field(0.0, ge=0, description="Fixed time per request, ms.")


class TokenService(_Model):
    """Service = base + prefill * input tokens + decode * output tokens, by the serving pool's GPU."""

    dist: Literal["tokens"]
    input_tokens: TokenCount = Field(default_factory=lambda: TokenCount(mean=1024, cv=1.0),
                                     description="Prompt tokens (a trace supplies its own).")
    output_tokens: TokenCount = Field(default_factory=lambda: TokenCount(mean=256, cv=1.0),
                                      description="Generated tokens (a trace supplies its own).")
    coefficients: dict[str, TokenCoefficients] = Field(
        default_factory=dict, description="Per GPU type; defaults derived from measured Llama2-70B latencies.")


Service = Annotated[
    ConstantService | ExponentialService | LognormalService | EmpiricalService | TokenService,
    Field(discriminator="dist"),
]


class Slo(_Model):
    """Service-level objectives of a workload; a request meets them when it completes within
    every one that is set."""

    ttft_ms: float | None = Field(None, gt=0, description="Time to first token, ms (network, queue and prefill).")
    tpot_ms: float | None = Field(None, gt=0, description="Mean time per output token after the first, ms.")
    e2e_ms: float | None = Field(None, gt=0, description="End-to-end latency, ms.")


class SharedPrefix(_Model):
    """Shared prompts (system prompts, few-shot examples, documents) that requests open with.

    Prompt ``k`` (1..``prompts``) is chosen with probability proportional to ``k^-popularity``
    (Zipf; 0: uniform); its length is drawn once. A request's prompt is the shared prompt
    followed by its own ``input_tokens``."""

    prompts: int = Field(ge=1, le=10_000_000, description="Distinct shared prompts.")
    tokens: TokenCount = Field(description="Length of each shared prompt, tokens (drawn once per prompt).")
    popularity: float = Field(1.0, ge=0, description="Zipf exponent of the prompts' popularity (0: uniform).")
    share: float = Field(1.0, ge=0, le=1, description="Fraction of requests that open with a shared prompt.")


class Sessions(_Model):
    """Conversations of several turns. The workload's arrivals start sessions; each later
    turn is sent ``think`` after the previous answer reached the user (exponential), and its
    prompt is the whole conversation so far (earlier prompts and answers) followed by a new
    message drawn from ``service.input_tokens``. A turn that is not answered (rejected,
    timed out, lost to a failure) ends its session; turns due after the run's end are not sent."""

    turns: float = Field(ge=1, le=1000, description="Mean turns per session (geometric, at least 1).")
    think: Duration = Field(ge=0, description="Mean time between an answer reaching the user and the next turn "
                            "(exponential).")
    max_turns: int = Field(64, ge=1, le=1000, description="Turns per session at most.")


class InferenceWorkload(_Model):
    """Inference requests sent by users in the ``origin`` regions."""

    name: Name = Field(description="Workload name.")
    origin: dict[str, Annotated[float, Field(ge=0)]] = Field(
        min_length=1, description="Where the users are: weight per region (normalised).")
    arrival: Arrival = Field(description="poisson (with an optional profile) or trace replay.")
    service: Service = Field(description="Service time model.")
    slo: Slo = Field(default_factory=Slo, description="Latency objectives (for SLO attainment and goodput).")
    slo_ms: float | None = Field(None, gt=0, description="Alias of slo.e2e_ms (end-to-end objective), ms.")
    timeout_ms: float | None = Field(None, gt=0, description="A request still queued this long is dropped, ms.")
    model: str | None = Field(None, description="The model the requests are for: only pools whose serving.model "
                              "is this one serve them (none: any pool).")
    kv_residency: Literal["none", "soft", "hard"] = Field(
        "none", description="Whether a request's KV cache (user data) may leave its origin's jurisdiction when it "
        "moves from a prefill to a decode pool: hard: never (farther decode pools at home are chosen); soft: "
        "it may, each such copy counted as a residency violation.")
    sessions: Sessions | None = Field(None, description="Requests are turns of conversations whose context "
                                      "grows turn by turn (token workloads); arrivals start sessions.")
    shared_prefix: SharedPrefix | None = Field(None, description="Requests open with one of a pool of shared "
                                               "prompts, which batching replicas can cache (token workloads).")

    @property
    def e2e_slo_ms(self) -> float | None:
        """The end-to-end objective, however it was written."""
        return self.slo.e2e_ms if self.slo.e2e_ms is not None else self.slo_ms


class Residency(_Model):
    """Where a dataset may be stored and processed."""

    allowed_regions: list[str] | None = Field(None, description="Regions the data may be in.")
    allowed_jurisdictions: list[str] | None = Field(None, description="Jurisdictions the data may be in (e.g. EU).")
    mode: Literal["hard", "soft"] = Field(
        "hard",
        description="hard: placement elsewhere is forbidden; soft: allowed, counted as a violation and penalised.")
    penalty_usd_per_gb: float = Field(0.0, ge=0, description="Soft rule: cost per GB moved outside, seen by policies.")


class Dataset(_Model):
    """A training dataset living in one region, with optional extra copies."""

    name: Name = Field(description="Dataset name.")
    size_gb: float = Field(gt=0, description="Size, GB (10^9 bytes).")
    home: str = Field(description="Region holding the primary copy.")
    replicas: list[str] = Field(default_factory=list, description="Other regions holding a copy.")
    residency: Residency | None = Field(None, description="Residency rule (none: may go anywhere).")


class Checkpoint(_Model):
    """Periodic checkpoints of a training job."""

    interval: Duration | None = Field(None, gt=0, description="Compute time between checkpoints (none: never).")
    write: Duration = Field(0.0, ge=0, description="Time to write one checkpoint (the job pauses).")
    restart: Duration = Field(0.0, ge=0, description="Time to restart from a checkpoint after a requeue.")
    size_gb: float = Field(0.0, ge=0, description="Checkpoint size, GB. Above 0 checkpoints have a location: a job "
                           "resumes from a copy it can reach (fetched over the WAN), else from the beginning; "
                           "0: a checkpoint is available everywhere.")
    replicate_to: list[str] = Field(default_factory=list, description="Regions each checkpoint is copied to over "
                                    "the WAN (costed), so a job can resume elsewhere when its region is down.")


class GpuChoice(_Model):
    """Gang size drawn from choices with weights."""

    choices: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, description="Possible GPU counts.")
    weights: list[Annotated[float, Field(ge=0)]] | None = Field(None, description="Relative weights (default equal).")


class GpuHoursWork(_Model):
    """Work as GPU-hours on the reference GPU; faster GPUs finish sooner (by bf16 TFLOP/s)."""

    kind: Literal["gpu_hours"]
    mean: float = Field(gt=0, description="Mean GPU-hours per job on the reference GPU.")
    cv: float = Field(0.0, ge=0, le=MAX_CV,
                      description="Coefficient of variation (lognormal; 0 = constant; 1 with dist exponential).")
    dist: Literal["lognormal", "exponential"] = Field("lognormal", description="Distribution of the work.")
    reference_gpu: str = Field("H100", description="GPU type the GPU-hours are measured on.")


class StepsWork(_Model):
    """Work as training steps, with a per-GPU throughput by GPU type."""

    kind: Literal["steps"]
    mean: float = Field(gt=0, description="Mean steps per job.")
    cv: float = Field(0.0, ge=0, le=MAX_CV, description="Coefficient of variation (lognormal; 0 = constant).")
    throughput_steps_per_s: dict[str, Annotated[float, Field(gt=0)]] = Field(
        min_length=1, description="Steps per second per GPU, by GPU type (types not listed cannot run the job).")


class PhillyWork(_Model):
    """Run time drawn from the distribution fitted to Microsoft Philly job run times."""

    kind: Literal["philly"]
    reference_gpu: str = Field("H100", description="GPU type on which the fitted run time holds.")


Work = Annotated[GpuHoursWork | StepsWork | PhillyWork, Field(discriminator="kind")]


class PoissonJobs(_Model):
    """Jobs arriving as a Poisson process."""

    source: Literal["poisson"]
    rate_per_h: float = Field(gt=0, description="Job arrivals per hour.")
    gpus: int | GpuChoice = Field(8, description="Gang size in GPUs (all start together).")
    work: Work = Field(description="How much work a job is.")


class GavelTrace(_Model):
    """Replay of the Philly-derived Gavel trace (job_type,total_steps,arrival_time_s,scale_factor_gpus)."""

    source: Literal["gavel"]
    path: str = Field(description="Trace CSV (relative to the scenario file).")
    throughputs_path: str = Field(
        description="Gavel isolated throughputs CSV (gpu_type,job_type,scale_factor_gpus,throughput_steps_per_s).")
    time_scale: float = Field(1.0, gt=0, description="Speed-up of the trace clock.")


class AlibabaTrace(_Model):
    """Replay of the Alibaba GPU pod list (num_gpu, gpu_milli, creation/scheduled/deletion times)."""

    source: Literal["alibaba"]
    path: str = Field(description="Pod list CSV (relative to the scenario file).")
    time_scale: float = Field(1.0, gt=0, description="Speed-up of the trace clock.")
    reference_gpu: str = Field("H100", description="GPU type on which the traced run times hold.")


JobSource = Annotated[PoissonJobs | GavelTrace | AlibabaTrace, Field(discriminator="source")]


class TrainingWorkload(_Model):
    """Training jobs: gangs of GPUs that need a dataset."""

    name: Name = Field(description="Workload name.")
    jobs: JobSource = Field(description="Where the jobs come from: poisson, gavel or alibaba.")
    dataset: str | None = Field(None, description="Dataset the jobs read (none: no data to move).")
    gpu_types: list[str] | None = Field(None, description="GPU types the jobs may use (default: any).")
    priority: int = Field(0, description="Priority class; higher runs first and is preempted last.")
    deadline: Duration | None = Field(None, gt=0, description="Time after arrival by which a job should finish.")
    span_regions: bool = Field(False, description="May a gang span pools in several regions.")
    checkpoint: Checkpoint = Field(default_factory=Checkpoint, description="Checkpointing.")
    max_jobs: int | None = Field(None, ge=1, description="Stop after this many jobs.")


class PolicySpec(_Model):
    name: str = Field(min_length=1, description="Registered policy name or `package.module:Class`.")
    params: dict[str, Any] = Field(default_factory=dict, description="Policy parameters.")


def _spec_from_name(value: Any) -> Any:
    """A policy may be given by name alone: ``nearest`` means ``{name: nearest}``."""
    return {"name": value} if isinstance(value, str) else value


def _policy_field(kind: str, description: str) -> Any:
    default = PolicySpec(name=POLICY_KINDS[kind].default)
    return Field(default, description=description)


# Written as a name or a {name, params} mapping; always a PolicySpec once validated.
Policy = Annotated[PolicySpec, BeforeValidator(_spec_from_name, json_schema_input_type=str | PolicySpec)]


class Allocation(_Model):
    """The seed's allocation model R(t) = sum_i r_i * L(t) / L_max."""

    weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        min_length=1, description="r_i by region or `region/pool`; 0 marks a standby.")
    L_max: float = Field(gt=0, description="Load the weighted (non-standby) capacity carries when fully active.")
    policy: Policy = _policy_field("allocation", "Allocation policy: proportional (the seed's split by r_i) or "
                                   "packed (highest r_i first), or `package.module:Class`.")


class Autoscaling(_Model):
    """The autoscaler: every ``interval`` its policy sets the replicas each autoscaled pool
    keeps provisioned; new replicas serve after a cold start (``regions[].pools[].autoscale``)."""

    policy: Policy = _policy_field("autoscaling", "Autoscaling policy: target_utilization (running and queued "
                                   "requests over capacity), ttft_slo (scale on recent TTFT), allocation_model (the "
                                   "allocation model's replicas, with cold starts), or `package.module:Class`.")
    interval: Duration = Field(60.0, gt=0, description="Time between autoscaling decisions.")
    scale_down_cooldown: Duration = Field(
        300.0, ge=0, description="A pool is not scaled down until this long after its last scale-up or scale-down, "
        "and then only to the most replicas its policy asked for over this past period.")
    scale_up_cooldown: Duration = Field(
        0.0, ge=0, description="A pool is not scaled up again until this long after its last scale-up began.")


class Scheduler(_Model):
    """The periodic scheduler process that applies the load and allocation models."""

    interval: Duration = Field(300.0, gt=0, description="Time between scheduler decisions.")
    load_model: LoadModel | None = Field(
        None, description="L(t): linear (the seed's), constant, diurnal, step, piecewise or observed.")
    allocation: Allocation | None = Field(None, description="R(t) and its split between regions.")
    routing: Policy = _policy_field("routing", "Routing policy for inference requests.")
    placement: Policy = _policy_field("placement", "Placement policy for training jobs.")
    autoscaling: Autoscaling | None = Field(
        None, description="Autoscale the pools that have an `autoscale` section (none: pools are not autoscaled).")
    placement_interval: Duration | None = Field(
        None, gt=0, description="Also run placement periodically (default: only when a job arrives or GPUs free up).")
    sync_delay: Duration = Field(
        0.0, ge=0, description="Control-plane staleness: routing policies see the queue lengths and busy slots "
        "of other regions' pools refreshed at most once per this period (0: always current); those of the "
        "requests' own region are always current.")
    sync_delay_by_region: dict[str, Duration] = Field(
        default_factory=dict, description="Staleness of particular regions' figures as seen from elsewhere "
        "(a region far away, or with a slow control plane), overriding sync_delay for them.")


class Metrics(_Model):
    """How results are aggregated."""

    bucket: Duration = Field(300.0, gt=0, description="Width of a time-series bucket.")
    requests: bool = Field(False, description="Also write every request's outcome to requests.npz.")


class RepairTime(_Model):
    """Time to bring a failed replica back (swap, diagnose, reboot)."""

    kind: Literal["exponential", "lognormal", "constant"] = Field(
        "exponential", description="Distribution of repair times.")
    mean: Duration = Field(10800.0, gt=0, description="Mean time to repair (MTTR); default 3 h, the middle of "
                           "the 2-4 h swap-and-diagnose figure in reliability_parameters.csv.")
    cv: float = Field(1.0, gt=0, le=MAX_CV, description="Coefficient of variation (lognormal only).")


MTBF_DEPRECATED = ("mtbf is deprecated: it is the mean time to failure (up time), not failure-to-failure "
                   "(that is mttf + repair.mean); write mttf")


def _mtbf_is_mttf(data: Any) -> Any:
    """``mtbf`` was the key's old name although it meant the mean up time: accept it (the
    loader warns, naming the file and line: :data:`MTBF_DEPRECATED`)."""
    if isinstance(data, dict) and "mtbf" in data:
        if "mttf" in data:
            raise ValueError("give mttf (mtbf is its deprecated name), not both")
        data = {("mttf" if k == "mtbf" else k): v for k, v in data.items()}
    return data


class NodeFailures(_Model):
    """Independent failures of replicas: each alternates up (a time to failure of mean
    ``mttf``) and down (a repair), so failures of one replica are ``mttf + repair.mean``
    apart on average (its MTBF)."""

    pools: list[str] = Field(default_factory=list, description="Pools (`region/pool`) or regions it applies to "
                             "(empty: every pool).")
    mttf: Duration | None = Field(None, gt=0, description="Mean time to failure of one replica: its mean up time "
                                  "from a repair to the next failure (default: the Llama 3 rate, 0.000474 per "
                                  "GPU-day, times the replica's GPUs). `mtbf` is accepted as a deprecated name "
                                  "with a warning.")
    shape: float = Field(1.0, gt=0, description="Weibull shape of the time to failure (1: exponential).")
    repair: RepairTime = Field(default_factory=RepairTime, description="Repair time distribution.")

    @model_validator(mode="before")
    @classmethod
    def _accept_mtbf(cls, data: Any) -> Any:
        return _mtbf_is_mttf(data)


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def replica_range(text: str | int) -> range | None:
    """Replica indices of a domain member: ``"0-3"`` (inclusive), ``5`` or ``"5"``, or
    ``"all"`` (``range(0)`` then: the caller substitutes the pool's size). None if malformed."""
    if isinstance(text, int):
        return range(text, text + 1) if text >= 0 else None
    if text.strip() == "all":
        return range(0)
    match = _RANGE.match(text)
    if match is None:
        return None
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    return range(first, last + 1) if last >= first else None


class FailureDomain(_Model):
    """Replicas that fail together: a rack, a power domain, a bad software push. One event
    takes every member replica down at once; they come back together when it is repaired.
    Domains may overlap (racks inside a power domain): a replica is down while any event
    covering it lasts."""

    name: Name = Field(description="Domain name (failures.csv `domain`).")
    kind: Literal["rack", "power", "software"] = Field(
        "rack", description="What the domain is (failures.csv `kind`): rack, power or software.")
    members: dict[str, str | int] = Field(
        min_length=1, description="Replicas in the domain by pool (`region/pool`): an inclusive index range "
        "`0-3`, one index `5`, or `all`.")
    mttf: Duration | None = Field(None, gt=0, description="Mean time between the end of one event and the next "
                                  "(random events, Weibull with `shape`); none: only the events at `at`.")
    shape: float = Field(1.0, gt=0, description="Weibull shape of the time to the next event (1: exponential).")
    at: list[Duration] = Field(default_factory=list, description="Scheduled events (a software push at a known "
                               "time), each lasting a repair time.")
    repair: RepairTime = Field(default_factory=RepairTime, description="How long an event keeps the members down "
                               "(for a push: until it is rolled back; `kind: constant` for a fixed time).")


class RegionOutage(_Model):
    """A whole region goes dark: scheduled (`at`) or random (`rate_per_year`)."""

    region: str = Field(description="The region that fails.")
    at: Duration | None = Field(None, ge=0, description="Start of a scheduled outage.")
    duration: Duration = Field(description="Length of a scheduled outage, or the mean length of random ones "
                               "(exponentially distributed).")
    rate_per_year: float | None = Field(None, gt=0, description="Random outages: Poisson rate per year.")


class LinkFailure(_Model):
    """Links cut for a period: one link (`a`, `b`) or every link out of a group (`regions`)."""

    a: str | None = Field(None, description="One end of the failed link.")
    b: str | None = Field(None, description="The other end.")
    regions: list[str] | None = Field(None, description="A partition: every link between these regions and the "
                                      "rest is cut (the group stays connected inside).")
    at: Duration = Field(ge=0, description="When the cut starts.")
    duration: Duration = Field(gt=0, description="How long it lasts.")


class Failures(_Model):
    """What fails, and how the system reacts."""

    nodes: list[NodeFailures] = Field(default_factory=list, description="Replica failure models.")
    domains: list[FailureDomain] = Field(default_factory=list, description="Failure domains (racks, power "
                                         "domains, software pushes): correlated failures of their members.")
    outages: list[RegionOutage] = Field(default_factory=list, description="Region outages.")
    links: list[LinkFailure] = Field(default_factory=list, description="Link failures and network partitions; "
                                     "routing recomputes paths around them.")
    trace: str | None = Field(None, description="Failure trace CSV: `time_s,region,pool,replicas,duration_s`.")
    detection: Duration = Field(30.0, ge=0, description="Delay before a failure or recovery is noticed and "
                                "the scheduler re-allocates (failover to standby).")
    warmup: Duration = Field(300.0, ge=0, description="Time a replica activated by failover needs before it serves.")
    inference: Literal["retry", "drop"] = Field(
        "retry", description="Requests in service on a failed replica: routed again from the failure time, or dropped.")
    max_retries: int = Field(2, ge=0, description="Retries per request before it is dropped.")


class Consistency(_Model):
    """Model versions rolled out over the WAN to the serving regions."""

    model_gb: float = Field(gt=0, description="Size of one model version, GB.")
    source: str | None = Field(None, description="Region scheduled versions come from (default: the first "
                               "region with GPUs); a version from training comes from the job's region.")
    at: list[Duration] = Field(default_factory=list, description="Times at which a new version is released.")
    every: Duration | None = Field(None, gt=0, description="Also release one every this period (from `every` on).")
    on_training: list[str] = Field(default_factory=list, description="Training workloads whose completed jobs "
                                   "release a version.")
    mode: Literal["eventual", "strong"] = Field(
        "eventual", description="eventual: a region serves a version once its copy lands; strong: every region "
        "keeps serving the previous version until all copies have landed, then all switch at once.")


class Copy(_Model):
    """Bulk copies from one region to another (a backup, a data set moving), at given times
    and/or as a Poisson stream; each shares the links with every other transfer."""

    name: Name = Field(description="Name of the copies (transfers.csv `dataset` is `copy:<name>`, or the "
                       "dataset's name when they copy one).")
    src: str = Field(description="Region the bytes leave, or `region/host` (through that host's NIC).")
    dst: str = Field(description="Region they go to, or `region/host`.")
    size_gb: float | None = Field(None, gt=0, description="Size of one copy, GB (10^9 bytes; default: the "
                                  "dataset's size).")
    dataset: str | None = Field(None, description="The dataset being copied: its residency rule applies (hard: "
                                "the scenario is refused; soft: each copy counts as a violation).")
    at: list[Duration] = Field(default_factory=list, description="Times at which one copy starts.")
    rate_per_h: float | None = Field(None, gt=0, description="Also a Poisson stream of copies, this many per hour "
                                     "from the start.")
    max_copies: int | None = Field(None, ge=1, description="Stop the stream after this many copies.")
    priority: int = Field(0, description="Strict priority class on the links: a higher class takes its share "
                          "first, lower ones share what is left (dataset, checkpoint and model copies are 0).")


class Transfers(_Model):
    """Plain bulk copies over the WAN, outside training and rollouts."""

    copies: list[Copy] = Field(default_factory=list, description="Copies described in the scenario.")
    trace: str | None = Field(None, description="Copy trace CSV `time_s,src,dst,size_gb,priority,dataset` "
                              "(columns in any order; priority (default 0) and dataset may be left out or "
                              "empty), relative to the scenario file.")


class PlanGrowth(_Model):
    """An uncertain growth of demand per quarter."""

    dist: Literal["uniform", "triangular", "normal", "lognormal"] = Field(description="Law of the quarterly growth.")
    low: float | None = Field(None, description="uniform, triangular: the lowest growth (a fraction: 0.08 is 8 %).")
    high: float | None = Field(None, description="uniform, triangular: the highest growth.")
    mode: float | None = Field(None, description="triangular: the most likely growth.")
    mean: float | None = Field(None, description="normal: the mean growth.")
    sd: float | None = Field(None, ge=0, description="normal: its standard deviation.")
    median: float | None = Field(None, gt=0, description="lognormal: the median growth.")
    sigma: float | None = Field(None, ge=0, description="lognormal: the standard deviation of its logarithm.")

    @model_validator(mode="after")
    def _parameters(self) -> PlanGrowth:
        needed = {"uniform": ("low", "high"), "triangular": ("low", "mode", "high"), "normal": ("mean", "sd"),
                  "lognormal": ("median", "sigma")}[self.dist]
        given = {k for k in ("low", "high", "mode", "mean", "sd", "median", "sigma") if getattr(self, k) is not None}
        if given != set(needed):
            raise ValueError(f"a {self.dist} growth takes exactly {', '.join(needed)} (got {', '.join(sorted(given))})")
        if self.dist == "uniform" and not self.low <= self.high:  # type: ignore[operator]
            raise ValueError("a uniform growth needs low <= high")
        if self.dist == "triangular" and not self.low <= self.mode <= self.high:  # type: ignore[operator]
            raise ValueError("a triangular growth needs low <= mode <= high")
        return self


def _growth_kind(value: Any) -> str:
    """Which form of a growth ``value`` is written: a number, a law (it has ``dist``) or a
    mapping of workload names. Tags are the forms' type names, so that an error is located
    at the key written (``plan.growth.chat``), never at a union member."""
    if isinstance(value, PlanGrowth) or (isinstance(value, Mapping) and "dist" in value):
        return "PlanGrowth"
    return "dict" if isinstance(value, Mapping) else "float"


GrowthLaw = Annotated[Union[Annotated[float, Tag("float")], Annotated[PlanGrowth, Tag("PlanGrowth")]],  # noqa: UP007
                      Discriminator(_growth_kind)]
Growth = Annotated[Union[Annotated[float, Tag("float")], Annotated[PlanGrowth, Tag("PlanGrowth")],  # noqa: UP007
                         Annotated[dict[str, GrowthLaw], Tag("dict")]], Discriminator(_growth_kind)]

HOURS_PER_QUARTER = 365.25 * 24 / 4


class PlanOption(_Model):
    """Replicas that can be ordered for a pool of the scenario (a pool with `replicas: 0`
    offers a GPU type a region does not have yet). One price: a lease per replica and
    quarter, an hourly price per GPU, or a purchase price per replica paid on arrival."""

    pool: str = Field(description="`region/pool` whose replicas can be ordered (its GPU type and size).")
    lead_quarters: int = Field(0, ge=0, le=40, description="Quarters between an order and its arrival.")
    usd_per_replica_quarter: float | None = Field(None, gt=0, description="Lease of one replica per quarter it is "
                                                  "held, USD.")
    usd_per_gpu_hour: float | None = Field(None, gt=0, description="Hourly price of one GPU while held, USD "
                                           "(2,191.5 h a quarter).")
    usd_per_replica: float | None = Field(None, gt=0, description="Purchase price of one replica, USD, paid in "
                                          "the quarter it arrives.")
    kw_per_gpu: float | None = Field(None, gt=0, description="Power of one GPU, kW, for the power caps (default: "
                                     "the GPU catalogue's TDP).")
    max_replicas: int | None = Field(None, ge=1, le=1_000_000, description="Replicas the plan may order at most.")

    @model_validator(mode="after")
    def _one_price(self) -> PlanOption:
        prices = [k for k in ("usd_per_replica_quarter", "usd_per_gpu_hour", "usd_per_replica")
                  if getattr(self, k) is not None]
        if len(prices) != 1:
            raise ValueError("give exactly one price: usd_per_replica_quarter, usd_per_gpu_hour or usd_per_replica"
                             + (f"; {' and '.join(prices)} are given" if prices else ""))
        return self


class PowerCap(_Model):
    """What a region's site may hold from a quarter on (a later entry for the region replaces
    it): megawatts its GPUs draw (TDP x PUE) and/or GPUs installed."""

    region: str = Field(description="Region name.")
    mw: float | None = Field(None, gt=0, description="Megawatts (none: no power cap).")
    gpus: int | None = Field(None, ge=0, description="GPUs the site may hold (a build-out limit; none: no limit).")
    from_quarter: int = Field(1, ge=1, le=40, description="First quarter the cap applies.")

    @model_validator(mode="after")
    def _something(self) -> PowerCap:
        if self.mw is None and self.gpus is None:
            raise ValueError("a cap needs mw, gpus or both")
        return self


class Retirement(_Model):
    """Replicas of a pool taken out of service from a quarter on (old GPUs retired)."""

    pool: str = Field(description="`region/pool` of the scenario.")
    replicas: int = Field(ge=1, description="Replicas retired.")
    quarter: int = Field(ge=1, le=40, description="First quarter without them.")


class Plan(_Model):
    """A build plan over quarters (`simulate.py plan-calendar`): the scenario is one quarter's
    busy period; demand grows each quarter; replicas can be ordered with lead times and costs
    under power caps; each quarter must meet `target` with `probability` over growth samples."""

    quarters: int = Field(ge=1, le=40, description="Quarters planned.")
    target: str = Field(description="DOTTED.PATH OP NUMBER on summary.json, e.g. inference.ttft_ms.p99<=2000.")
    probability: float = Field(0.9, gt=0, le=1, description="Share of growth samples that must meet the target.")
    samples: int = Field(16, ge=1, le=10_000, description="Latin-hypercube samples of the growth (and of the "
                         "scenario's uncertain values).")
    growth: Growth = Field(
        0.0, description="Growth of the workloads' rates per quarter: a fraction or a law for every workload, or "
        "one per workload name (the others do not grow).")
    options: list[PlanOption] = Field(min_length=1, description="What can be ordered.")
    power_caps: list[PowerCap] = Field(default_factory=list, description="Power and build-out caps per region "
                                       "over time.")
    retire: list[Retirement] = Field(default_factory=list, description="Replicas retired over time.")
    kpis: list[str] = Field(default_factory=lambda: ["inference.slo_attainment", "utilization.mean"],
                            description="Summary values charted per quarter beside the target (dotted paths).")


class Scenario(_Model):
    """A complete simulation scenario."""

    name: Name = Field(description="Scenario name; names the results folder.")
    description: str = Field("", description="Free text.")
    seed: int = Field(0, ge=0, description="Root seed; every random stream is spawned from it.")
    duration: Duration = Field(86400.0, gt=0, description="Simulated time.")
    warmup: Duration = Field(0.0, ge=0, description="Initial period excluded from statistics.")
    fidelity: Literal["exact", "fluid"] = Field(
        "exact", description="How inference requests are simulated: exact (one by one) or fluid (per time step "
        "and pool from queueing formulas: fast, approximate; docs/fluid.md).")
    regions: list[Region] = Field(min_length=1, description="Datacenter and user regions.")
    links: list[Link] = Field(default_factory=list, description="Inter-region links.")
    network: Network = Field(default_factory=Network, description="How links are completed.")
    inference: list[InferenceWorkload] = Field(default_factory=list, description="Inference workloads.")
    datasets: list[Dataset] = Field(default_factory=list, description="Training datasets.")
    training: list[TrainingWorkload] = Field(default_factory=list, description="Training workloads.")
    scheduler: Scheduler = Field(default_factory=Scheduler, description="Scheduler (without a load model and an "
                                 "allocation all capacity is active).")
    metrics: Metrics = Field(default_factory=Metrics, description="Metric aggregation.")
    transfers: Transfers | None = Field(None, description="Bulk copies between regions (transfers.csv).")
    failures: Failures | None = Field(None, description="Failures and fault tolerance (none: nothing fails).")
    consistency: Consistency | None = Field(None, description="Model version rollouts across regions (none: a "
                                            "single version everywhere).")
    plan: Plan | None = Field(None, description="A build plan over quarters for simulate.py plan-calendar "
                              "(ignored by run).")

    @property
    def explicit_mesh(self) -> bool:
        """True when the network holds only the listed links."""
        return self.network.mesh == "explicit" or (self.network.mesh == "auto" and bool(self.links))
