"""All inference requests of a run, drawn up front as one time-sorted batch of arrays.

Each workload of the scenario yields its requests on ``[0, duration)`` - Poisson arrivals
(:mod:`sim.workload.arrivals`) or a trace replay (:mod:`sim.workload.trace`) - with an
origin region, token counts and a pool-independent service time
(:mod:`sim.workload.service`). The workloads are merged into one :class:`RequestBatch`
sorted by arrival time; ties keep workload order, then generation order.

Randomness comes from named streams, so one workload's numbers never depend on another's
or on the policy under test: ``arrivals/<name>`` for arrival times, ``origin/<name>`` for
the origin of trace requests, ``service/<name>`` for service times and token counts,
``prefix/<name>`` for shared prompts, ``sessions/<name>`` for later turns of conversations.

A workload with ``sessions`` also yields the later turns of its conversations, after every
first turn, with an arrival time of +inf: the engine sends turn k+1 when turn k's answer
has reached the user plus a think time (``next_turn`` links them, ``think_s`` holds the
think times). Turn k+1's prompt is turn k's prompt and answer followed by a new message;
that context is its prefix (a run-unique id above every shared prompt's), which a batching
replica that served turn k may still hold.

Public: ``RequestBatch``, ``generate_requests``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import Problem, ScenarioError
from sim.scenario.model import InferenceWorkload, PoissonArrival, Scenario, TokenService, TraceArrival
from sim.streams import Streams
from sim.workload.arrivals import poisson_arrivals
from sim.workload.service import draw_service_s, draw_token_counts
from sim.workload.trace import read_trace, replay_trace
from sim.world.build import World
from sim.world.catalogue import gpu_catalogue

__all__ = ["RequestBatch", "generate_requests"]


@dataclass(frozen=True)
class RequestBatch:
    """Requests as parallel arrays, sorted by arrival time."""

    t_s: np.ndarray            # float64, arrival at the origin, seconds since the start
    origin: np.ndarray         # int16, index into world.regions
    workload: np.ndarray       # int16, index into scenario.inference
    input_tokens: np.ndarray   # int32, 0 when the workload has no token counts
    output_tokens: np.ndarray  # int32
    service_s: np.ndarray      # float64, NaN for token-based workloads (pool-dependent)
    prefix: np.ndarray         # int32, the shared prompt the request opens with (-1: none), unique in the run
    prefix_tokens: np.ndarray  # int32, its length (included in input_tokens); 0 without one
    # Sessions (empty arrays when no workload has them): the index of the same session's
    # next turn (-1: none) and the think time before this turn, seconds (0 for first turns).
    next_turn: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    think_s: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __len__(self) -> int:
        return len(self.t_s)

    @property
    def has_sessions(self) -> bool:
        return len(self.next_turn) > 0

    @property
    def first_turns(self) -> int:
        """Requests whose arrival time is known before the run (all but later turns)."""
        return int(np.searchsorted(self.t_s, np.inf, side="left")) if self.has_sessions else len(self.t_s)

    @staticmethod
    def empty() -> RequestBatch:
        return RequestBatch(np.empty(0), np.empty(0, np.int16), np.empty(0, np.int16),
                            np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0), np.empty(0, np.int32),
                            np.empty(0, np.int32))


_COLUMNS = ("t_s", "origin", "workload", "input_tokens", "output_tokens", "service_s", "prefix", "prefix_tokens")


def _named(columns: list[np.ndarray]) -> dict[str, np.ndarray]:
    return dict(zip(_COLUMNS, columns, strict=True))


def generate_requests(scenario: Scenario, world: World, streams: Streams, base_dir: Path,
                      source: str = "<scenario>") -> RequestBatch:
    """Every inference request of the run, merged and sorted by arrival time.

    ``base_dir`` resolves relative trace paths; ``source`` names the scenario in errors.
    """
    offsets = np.cumsum([0] + [wl.shared_prefix.prompts if wl.shared_prefix else 0 for wl in scenario.inference])
    parts = [RequestBatch.empty()]
    context_ids = int(offsets[-1])  # conversation contexts are numbered after every shared prompt
    for k, wl in enumerate(scenario.inference):
        part = _workload_requests(k, wl, scenario.duration, world, streams, Path(base_dir), source, int(offsets[k]))
        if wl.sessions is not None:
            part = _with_sessions(part, wl, streams, context_ids)
            context_ids += int((part.next_turn >= 0).sum())
        parts.append(part)
    merged = _merge(parts)
    if merged.t_s.size < 2 or bool(np.all(merged.t_s[1:] >= merged.t_s[:-1])):
        return merged  # a stable sort of sorted times is the identity: no copies
    order = np.argsort(merged.t_s, kind="stable")
    columns = [getattr(merged, f)[order] for f in _COLUMNS]
    if not merged.has_sessions:
        return RequestBatch(*columns)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    nxt = merged.next_turn[order]
    linked = np.where(nxt >= 0, position[np.maximum(nxt, 0)], -1).astype(np.int32)
    return RequestBatch(**_named(columns), next_turn=linked, think_s=merged.think_s[order])


def _merge(parts: list[RequestBatch]) -> RequestBatch:
    """The parts one after the other, each column in the dtype concatenation gives it; one
    non-empty part is used as it is (a fleet's day of requests is not copied twice)."""
    full = [p for p in parts if len(p)]
    if len(full) == 1:
        only = full[0]
        columns = [getattr(only, f).astype(np.result_type(*(getattr(p, f) for p in parts)), copy=False)
                   for f in _COLUMNS]
        return RequestBatch(**_named(columns), next_turn=only.next_turn, think_s=only.think_s)
    columns = [np.concatenate([getattr(p, f) for p in parts]) for f in _COLUMNS]
    if not any(p.has_sessions for p in parts):
        return RequestBatch(*columns)
    starts = np.cumsum([0] + [len(p) for p in parts])
    nxt = np.concatenate([np.where(p.next_turn >= 0, p.next_turn + a, -1) if p.has_sessions
                          else np.full(len(p), -1) for p, a in zip(parts, starts[:-1], strict=True)]).astype(np.int32)
    think = np.concatenate([p.think_s if p.has_sessions else np.zeros(len(p)) for p in parts])
    return RequestBatch(**_named(columns), next_turn=nxt, think_s=think)


def _with_sessions(first: RequestBatch, wl: InferenceWorkload, streams: Streams, context_ids: int) -> RequestBatch:
    """``first`` (the sessions' first turns) followed by every later turn, level by level:
    turn k+1's prompt is turn k's prompt and answer plus a new message, and that context is
    its prefix (ids from ``context_ids``); it arrives at +inf until turn k is answered."""
    spec = wl.sessions
    assert spec is not None and isinstance(wl.service, TokenService)
    rng = streams.get(f"sessions/{wl.name}")
    n = len(first)
    turns = np.minimum(rng.geometric(1.0 / spec.turns, n), spec.max_turns)
    total = int(turns.sum())
    next_turn = np.full(total, -1, np.int32)
    think_s = np.zeros(total)
    cols: dict[str, list[np.ndarray]] = {f: [getattr(first, f)] for f in _COLUMNS}
    latest = np.arange(n)  # each session's latest turn (row)
    prompt, answer = first.input_tokens.astype(np.int64), first.output_tokens.astype(np.int64)
    live, rows, level = np.arange(n), n, 2
    while True:
        live = live[turns[live] >= level]
        m = len(live)
        if not m:
            break
        new = np.arange(rows, rows + m)
        context = prompt[live] + answer[live]
        message = draw_token_counts(wl.service.input_tokens, m, rng)
        out = draw_token_counts(wl.service.output_tokens, m, rng)
        think_s[new] = rng.exponential(spec.think, m) if spec.think > 0 else 0.0
        next_turn[latest[live]] = new
        for f, column in _turn_columns(first, live, context, message, out, context_ids + new - n).items():
            cols[f].append(column)
        prompt[live], answer[live] = context + message, out
        latest[live] = new
        rows += m
        level += 1
    columns = [np.concatenate(cols[f]) for f in _COLUMNS]
    return RequestBatch(**_named(columns), next_turn=next_turn, think_s=think_s)


def _turn_columns(first: RequestBatch, live: np.ndarray, context: np.ndarray, message: np.ndarray,
                  out: np.ndarray, prefix: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of the next turns of sessions ``live``: unknown arrival (+inf) and
    service (NaN), the first turn's origin and workload, the conversation so far plus the
    new message as prompt (capped to int32), and that conversation as its prefix."""
    cap = np.iinfo(np.int32).max
    m = len(live)
    return {"t_s": np.full(m, np.inf), "origin": first.origin[live], "workload": first.workload[live],
            "input_tokens": np.minimum(context + message, cap).astype(np.int32), "output_tokens": out,
            "service_s": np.full(m, np.nan), "prefix": prefix.astype(np.int32),
            "prefix_tokens": np.minimum(context, cap).astype(np.int32)}


def _workload_requests(k: int, wl: InferenceWorkload, duration_s: float, world: World,
                       streams: Streams, base_dir: Path, source: str, prefix_offset: int = 0) -> RequestBatch:
    _check_coefficients(k, wl, source)
    weights = _origin_weights(k, wl, world, source)
    if isinstance(wl.arrival, PoissonArrival):
        offsets = np.array([r.utc_offset_h for r in world.regions])
        t, origin = poisson_arrivals(wl.arrival, weights, offsets, duration_s,
                                     streams.get(f"arrivals/{wl.name}"))
        tokens_in, tokens_out = _drawn_tokens(wl, len(t), streams)
    else:
        t, origin, tokens_in, tokens_out = _trace_requests(k, wl, wl.arrival, weights, duration_s, streams,
                                                           base_dir, source)
    service_s = draw_service_s(wl.service, len(t), streams.get(f"service/{wl.name}"))
    prefix, prefix_tokens = _shared_prefixes(wl, len(t), streams, prefix_offset)
    return RequestBatch(t, origin.astype(np.int16), np.full(len(t), k, dtype=np.int16),
                        (tokens_in + prefix_tokens).astype(np.int32), tokens_out, service_s, prefix, prefix_tokens)


def _shared_prefixes(wl: InferenceWorkload, n: int, streams: Streams, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Which shared prompt each request opens with (-1: none; ids start at ``offset``) and
    its length. Prompt k of K is chosen with probability proportional to k^-popularity."""
    spec = wl.shared_prefix
    if spec is None:
        return np.full(n, -1, np.int32), np.zeros(n, np.int32)
    rng = streams.get(f"prefix/{wl.name}")
    lengths = draw_token_counts(spec.tokens, spec.prompts, rng)
    weights = np.arange(1, spec.prompts + 1, dtype=float) ** -spec.popularity
    chosen = rng.choice(spec.prompts, size=n, p=weights / weights.sum())
    opens = rng.random(n) < spec.share
    prefix = np.where(opens, chosen + offset, -1).astype(np.int32)
    return prefix, np.where(opens, lengths[chosen], 0).astype(np.int32)


def _drawn_tokens(wl: InferenceWorkload, n: int, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(wl.service, TokenService):
        return np.zeros(n, np.int32), np.zeros(n, np.int32)
    rng = streams.get(f"service/{wl.name}")
    return (draw_token_counts(wl.service.input_tokens, n, rng),
            draw_token_counts(wl.service.output_tokens, n, rng))


def _trace_requests(k: int, wl: InferenceWorkload, arrival: TraceArrival, weights: np.ndarray, duration_s: float,
                    streams: Streams, base_dir: Path, source: str) -> tuple[np.ndarray, ...]:
    """Times, origins and token counts of a replayed trace (``arrival``, the workload's)."""
    path = base_dir / arrival.path
    if not path.is_file():
        raise ScenarioError([Problem(source, None, f"inference[{k}].arrival.path", "file not found", arrival.path)])
    trace = read_trace(path, arrival.path)
    if arrival.loop and trace.period_s <= 0:
        raise ScenarioError([Problem(source, None, f"inference[{k}].arrival.loop",
                                     "a looped trace needs requests at two or more distinct times", True)])
    t, rows = replay_trace(trace, arrival.time_scale, arrival.loop, duration_s)
    origin = streams.get(f"origin/{wl.name}").choice(len(weights), size=len(t), p=weights)
    return t, origin, trace.input_tokens[rows], trace.output_tokens[rows]


def _origin_weights(k: int, wl: InferenceWorkload, world: World, source: str) -> np.ndarray:
    """Normalised origin weights per region, in world order."""
    index = {r.name: i for i, r in enumerate(world.regions)}
    unknown = [name for name in wl.origin if name not in index]
    if unknown or sum(wl.origin.values()) <= 0:
        raise ScenarioError([Problem(source, None, f"inference[{k}].origin",
                                     "must name known regions with weights summing above zero",
                                     dict(wl.origin))])
    weights = np.zeros(len(world.regions))
    for name, w in wl.origin.items():
        weights[index[name]] += w
    return weights / weights.sum()


def _check_coefficients(k: int, wl: InferenceWorkload, source: str) -> None:
    """Token coefficients must be keyed by GPU types the catalogue knows."""
    if not isinstance(wl.service, TokenService):
        return
    known = gpu_catalogue()
    bad = [key for key in wl.service.coefficients if key not in known]
    if bad:
        raise ScenarioError([Problem(source, None, f"inference[{k}].service.coefficients.{key}",
                                     f"unknown GPU type (valid: {', '.join(sorted(known))})", key)
                             for key in bad])
