"""A batching replica in the fluid limit: its throughput curve and its equilibrium batch.

A replica that batches like vLLM (:mod:`sim.workload.batching_model`) serving requests
of ``I`` prompt tokens and ``O`` output tokens on average, at ``lam`` requests/s, runs
iterations of ``tau`` ms. In equilibrium each iteration prefills the prompts that arrived
during one iteration, ``lam I tau`` tokens, and decodes one token of each of the ``b``
running sequences, ``b = lam (O - 1) tau`` (Little's law: a sequence decodes for ``O - 1``
iterations after its prefill yields the first token), which hold ``I + O / 2`` tokens of
context each on average. So ``tau`` is the fixed point of

    tau = iteration_ms(prefill = lam I tau, pairs = lam tau E[I (I + 1) / 2],
                       decode = max(b, 1), context = max(b, 1) (I + O / 2))

(a replica with any sequence at all iterates at batch >= 1), found by bisection. The batch
cannot exceed ``b_cap = min(max_batch, KV capacity / (I + O / 2), budget / (1 + I / (O - 1)))``
(the token budget ``max_batched_tokens`` holds the decodes and the prefill of one
iteration): at ``b_cap`` the replica sustains its most requests per second,
``mu_max = b_cap / ((O - 1) tau_cap)``; that is its throughput curve's ceiling.

For the queue (:mod:`sim.fluid.queues`) the pool is ``replicas x b_cap`` servers whose
service is the residence at full batch, ``(O - 1) tau_cap`` (SCV: the output count's), so
that Erlang C is near 0 until the pool approaches ``mu_max`` per replica and a backlog
builds beyond. What a request sees at the equilibrium ``tau`` of its step:

- time to first token (after the queue): half an iteration (the one under way when it
  arrives, if the replica is busy) plus its prefill iteration(s) (``ceil(I / (budget -
  b))`` chunks, each of the iteration time with its chunk added);
- time per output token ``tau``; service ``= first token + (O - 1) tau``.

Approximations (docs/fluid.md): the prefill work is spread evenly over iterations (real
iterations alternate short decodes and long prefills, and ``max(weights, compute)`` is
convex, so ``tau`` is a little low); requests are Poisson and the batch's occupancy is
taken as Poisson, so a replica is busy with probability ``1 - exp(-n)`` for ``n``
requests in it; preemption by recompute, prefix caches and the per-replica dispatch are
not modelled.

Public: ``BatchingPool``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.scenario.model import InferenceWorkload, TokenService
from sim.workload.batching_model import IterationModel, iteration_model
from sim.world import PoolInfo
from sim.world.llm_catalogue import kv_capacity_tokens, llm_spec

__all__ = ["BatchingPool", "Tokens"]

_BISECTIONS = 60


@dataclass(frozen=True)
class Tokens:
    """Token counts of the requests a pool serves: means and variances."""

    input_mean: float
    input_var: float
    output_mean: float
    output_var: float

    @classmethod
    def of(cls, wl: InferenceWorkload) -> Tokens:
        service = wl.service
        if not isinstance(service, TokenService):
            raise ValueError(f"inference workload {wl.name!r}: batching replicas need a token service")
        shared_mean = shared_var = 0.0
        if wl.shared_prefix is not None:
            spec = wl.shared_prefix
            mean, var = spec.tokens.mean, (spec.tokens.cv * spec.tokens.mean) ** 2
            shared_mean = spec.share * mean
            shared_var = spec.share * (var + mean * mean) - shared_mean ** 2
        i, o = service.input_tokens, service.output_tokens
        return cls(i.mean + shared_mean, (i.cv * i.mean) ** 2 + shared_var, o.mean, (o.cv * o.mean) ** 2)

    @property
    def context(self) -> float:
        """Mean context a decoding sequence holds (its prompt and half its answer)."""
        return self.input_mean + self.output_mean / 2.0

    @property
    def decodes(self) -> float:
        """Decode iterations after the first token (at least a small positive number)."""
        return max(self.output_mean - 1.0, 1e-3)

    @property
    def pairs(self) -> float:
        """Mean attention pairs of a whole prompt, ``E[I (I + 1) / 2]``."""
        return (self.input_var + self.input_mean ** 2 + self.input_mean) / 2.0


@dataclass(frozen=True)
class BatchingPool:
    """One pool's replica model and limits, for requests with ``tokens``."""

    model: IterationModel
    max_batch: int
    budget: int
    kv_capacity: int
    tokens: Tokens

    @classmethod
    def of(cls, pool: PoolInfo, tokens: Tokens) -> BatchingPool:
        serving = pool.serving
        assert serving is not None
        tp = serving.tensor_parallel or pool.gpus_per_replica
        kv = kv_capacity_tokens(llm_spec(serving.model), pool.gpu, tp, serving.gpu_memory_utilization)
        return cls(iteration_model(serving.model, pool.gpu.name, tp), serving.max_batch, serving.max_batched_tokens,
                   kv, tokens)

    # -- the throughput curve -------------------------------------------------------------
    @property
    def batch_cap(self) -> float:
        t = self.tokens
        return float(min(self.max_batch, self.kv_capacity / t.context, self.budget / (1.0 + t.input_mean / t.decodes)))

    def _iteration_ms(self, lam: float, tau_ms: float) -> float:
        return self._mean_iteration_ms(lam * tau_ms / 1000.0)

    def _mean_iteration_ms(self, arrivals: float) -> float:
        """Mean iteration time when ``arrivals`` prompts arrive per iteration: a fraction
        ``1 - exp(-arrivals)`` of iterations prefill (and pay the launch floor), the rest
        only decode."""
        t = self.tokens
        b = max(arrivals * t.decodes, 1.0)
        with_prefill = -math.expm1(-arrivals)
        decode = self.model.iteration_ms(0.0, 0.0, b, b * t.context)
        if with_prefill <= 0:
            return decode
        per = arrivals / with_prefill  # prompts in an iteration that has any
        prefill = self.model.iteration_ms(per * t.input_mean, per * t.pairs, b, b * t.context)
        return with_prefill * prefill + (1.0 - with_prefill) * decode

    def tau_ms(self, lam: float) -> float:
        """Equilibrium iteration time at ``lam`` requests/s per replica (at most the
        saturated one)."""
        top = self.saturated_tau_ms
        if lam <= 0:
            return self._iteration_ms(0.0, 0.0)
        lo, hi = 0.0, top
        if self._iteration_ms(lam, hi) > hi:
            return top  # no equilibrium below the cap: the replica is saturated
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2.0
            if self._iteration_ms(lam, mid) > mid:
                lo = mid
            else:
                hi = mid
        return hi

    @property
    def saturated_tau_ms(self) -> float:
        return self._mean_iteration_ms(self.batch_cap / self.tokens.decodes)

    @property
    def max_rate(self) -> float:
        """Requests/s one replica sustains at most (the throughput curve's ceiling)."""
        return self.batch_cap / (self.tokens.decodes * self.saturated_tau_ms / 1000.0)

    @property
    def full_residence_s(self) -> float:
        return self.tokens.decodes * self.saturated_tau_ms / 1000.0

    @property
    def scv(self) -> float:
        t = self.tokens
        return t.output_var / t.output_mean ** 2 if t.output_mean > 0 else 0.0

    # -- what a request sees at a given load ---------------------------------------------
    def first_token_s(self, lam: float, tau_ms: float) -> tuple[float, float]:
        """Mean and variance of the time from admission to the first token, s."""
        t = self.tokens
        arrivals = lam * tau_ms / 1000.0
        b = max(arrivals * t.decodes, 1.0)
        room = max(self.budget - b, 1.0)

        def prefill_ms(prompt: float) -> float:
            chunks = max(math.ceil(prompt / room), 1)
            chunk = prompt / chunks
            own = self.model.iteration_ms(arrivals * t.input_mean + chunk, arrivals * t.pairs + chunk * chunk / 2,
                                          b, b * t.context)
            return chunks * own
        busy = 1.0 - math.exp(-self.in_replica(lam, tau_ms))
        mean = busy * tau_ms / 2.0 + prefill_ms(t.input_mean)
        slope = (prefill_ms(t.input_mean + 64.0) - prefill_ms(t.input_mean)) / 64.0
        return mean / 1000.0, (slope / 1000.0) ** 2 * t.input_var

    def in_replica(self, lam: float, tau_ms: float) -> float:
        """Requests in one replica (admitted, prefilling or decoding): Little's law."""
        return lam * (self.tokens.decodes + 1.0) * tau_ms / 1000.0

    def batch_when_busy(self, lam: float, tau_ms: float) -> float:
        n = self.in_replica(lam, tau_ms)
        return n / -math.expm1(-n) if n > 0 else 1.0


def step_figures(pool: BatchingPool, lam_per_replica: np.ndarray) -> dict[str, np.ndarray]:
    """Per step: iteration time (ms), first-token mean and variance (s), requests in a
    replica, busy fraction and batch while busy, at each step's arrival rate per replica."""
    lam_per_replica = np.minimum(lam_per_replica, pool.max_rate)  # beyond it a backlog builds (queues.py)
    taus = np.array([pool.tau_ms(float(lam)) for lam in lam_per_replica])
    first = np.array([pool.first_token_s(float(lam), float(tau)) for lam, tau in zip(lam_per_replica, taus,
                                                                                       strict=True)])
    n = np.array([pool.in_replica(float(lam), float(tau)) for lam, tau in zip(lam_per_replica, taus, strict=True)])
    return {"tau_ms": taus, "first_mean_s": first[:, 0], "first_var_s2": first[:, 1], "in_replica": n,
            "busy": -np.expm1(-n), "batch": np.where(n > 0, n / np.maximum(-np.expm1(-n), 1e-300), 0.0)}
