"""Benchmark: the batching replicas' own code, replayed, measured in a way the machine's load does not move.

``bench/serving.py`` times a whole run (routing, the request loop, metrics) and compares it
with the slot model; on a shared machine its figures move by 10 % from run to run, more
than most single changes to the replica code save. This script runs the same scenario
once, records every call the request loop makes into the batching replicas (a request
reaching its pool, a boundary firing), and replays those calls on fresh replicas built
from the same inputs, for each version of ``sim/engine/batching.py`` given. Per version
it prints the CPU time per request (best of ``--repeat`` replays), the interpreted Python
instructions per request in the replica code (counted with ``sys.settrace`` over the
first ``--count`` requests: the same on any machine, whatever its load) and a digest of
what the replay produced (segments and per-request outcomes), which must be equal across
versions that claim the same results::

    python bench/replica_replay.py                                   # this tree
    git show 429589f:sim/engine/batching.py > /tmp/batching_base.py
    python bench/replica_replay.py /tmp/batching_base.py sim/engine/batching.py
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUTCOMES = ("status", "wait", "service", "at_pool", "first_token", "tpot")


class _NoCache:
    def __setitem__(self, j: int, value: int) -> None:
        pass


def record(requests: int) -> tuple[tuple, list[tuple[int, int, float] | None]]:
    """Run the serving bench's batching scenario; the replicas' inputs and the calls made
    into them, in order (``(request, pool, time)`` for an arrival, None for a boundary)."""
    import sim.engine.batching as batching
    from bench.serving import POOLS, RATE, SCENARIO
    from sim.runner import execute
    from sim.scenario import parse_scenario

    servers, calls = batching.BatchingServers, []
    init, arrive, fire = servers.__init__, servers.arrive, servers.fire
    inputs: list[tuple] = []

    def recording_init(self, specs, replicas, outcomes, in_tokens, out_tokens, timeout, *rest) -> None:
        if specs:
            arrays = {name: copy.copy(getattr(outcomes, name)) for name in OUTCOMES}
            inputs.append((specs, replicas, arrays, in_tokens, out_tokens, timeout, *rest[:2]))
        init(self, specs, replicas, outcomes, in_tokens, out_tokens, timeout, *rest)

    def recording_arrive(self, j: int, p: int, t: float, landed: bool = False) -> None:
        calls.append((j, p, t))
        arrive(self, j, p, t, landed)

    def recording_fire(self) -> None:
        calls.append(None)
        fire(self)

    servers.__init__, servers.arrive, servers.fire = recording_init, recording_arrive, recording_fire
    try:
        execute(parse_scenario(SCENARIO.format(duration=requests / RATE, rate=RATE, pool=POOLS["batching"])))
    finally:
        servers.__init__, servers.arrive, servers.fire = init, arrive, fire
    return inputs[0], calls


def replay(module: ModuleType, inputs: tuple, calls: list, stop: int | None = None) -> tuple[float, str]:
    """Replay ``calls[:stop]`` on fresh replicas of ``module``: CPU seconds and a digest."""
    specs, replicas, arrays, in_tokens, out_tokens, timeout, prefix, prefix_tokens = inputs
    outcomes = SimpleNamespace(**{name: copy.copy(a) for name, a in arrays.items()}, cached=_NoCache())
    servers = module.BatchingServers(specs, replicas, outcomes, in_tokens, out_tokens, timeout, prefix,
                                     prefix_tokens)
    at_pool, arrive, fire = outcomes.at_pool, servers.arrive, servers.fire
    start = time.process_time()
    for call in calls[:stop]:
        if call is None:
            fire()
        else:
            j, p, t = call
            at_pool[j] = t  # what the request loop writes before handing a request over
            arrive(j, p, t)
    seconds = time.process_time() - start
    digest = hashlib.sha1(bytes(servers._segments))
    for name in OUTCOMES:
        digest.update(bytes(getattr(outcomes, name)))
    return seconds, digest.hexdigest()[:12]


def instructions(module: ModuleType, replaying: Callable[[], object]) -> int:
    """Python instructions executed in ``module``'s file (and the iteration model's) while replaying."""
    files = {module.__file__, str(ROOT / "sim" / "workload" / "batching_model.py")}
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "opcode":
            count += 1
        return local

    def tracer(frame, event, arg):
        if frame.f_code.co_filename not in files:
            return None
        frame.f_trace_opcodes = True
        return local

    sys.settrace(tracer)
    try:
        replaying()
    finally:
        sys.settrace(None)
    return count


def load(path: str, k: int) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_replayed_batching_{k}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", default=[str(ROOT / "sim" / "engine" / "batching.py")],
                        help="batching.py files to replay (default: this tree's)")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, default=20_000, help="requests whose instructions are counted")
    args = parser.parse_args()
    inputs, calls = record(args.requests)
    arrivals = sum(call is not None for call in calls)
    print(f"{arrivals:,} requests, {len(calls) - arrivals:,} boundary events (superseded ones included) recorded")
    modules = [load(path, k) for k, path in enumerate(args.versions)]
    best = {path: float("inf") for path in args.versions}
    for _ in range(args.repeat):  # interleaved, so that load changes touch every version alike
        for path, module in zip(args.versions, modules, strict=True):
            seconds, _ = replay(module, inputs, calls)
            best[path] = min(best[path], seconds)
    stop = next((i for i, c in enumerate(calls) if c is not None and c[0] >= args.count), len(calls))
    counted = sum(call is not None for call in calls[:stop])
    for path, module in zip(args.versions, modules, strict=True):
        ops = instructions(module, lambda m=module: replay(m, inputs, calls, stop))
        _, digest = replay(module, inputs, calls)
        print(f"{path}: {best[path] / arrivals * 1e6:.2f} us CPU per request (best of {args.repeat}), "
              f"{ops / counted:,.0f} Python instructions per request, outputs {digest}")


if __name__ == "__main__":
    main()
