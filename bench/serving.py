"""Benchmark: the batching replica against the slot model, per request, on the same arrivals.

One pool of 8 Llama-2-70B replicas on 8 x H100 each, Poisson arrivals at 30 requests/s
(about 70 % of what the pool can serve), prompts of 1,000 and answers of 250 tokens on
average (lognormal, cv 1): 1,000,000 requests by default. The same scenario runs as the
slot model (64 batch-1 slots per replica, enough to keep that queue stable) and with
``serving`` (continuous batching), on the compiled replicas (what a run of this size gets
when numba is installed) and, with ``--python``, on the Python ones too. Each run is
scenario -> world -> engine -> metrics in memory (``sim.runner.execute``) in a fresh
child process, timed in CPU seconds from the scenario on (the compiled code's load from
numba's cache included); ``--rounds`` alternates the models and keeps the median. A first
child compiles the replicas' code if numba's cache does not hold it yet (reported apart:
a machine pays it once). Prints requests per second, the ratio of the batching model's
cost per request to the slot model's, and peak memory.

    python bench/serving.py [--requests 1000000] [--rounds 3] [--python]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 30.0
SCENARIO = """\
name: serving-bench
duration: {duration}s
regions:
  - name: a
    lat: 0
    lon: 0
    pools: [{{name: p, gpu: H100, replicas: 8, gpus_per_replica: 8, {pool}}}]
inference:
  - name: chat
    origin: {{a: 1}}
    arrival: {{process: poisson, rate_per_s: {rate}}}
    service: {{dist: tokens, input_tokens: {{mean: 1000, cv: 1}}, output_tokens: {{mean: 250, cv: 1}}}}
"""
POOLS = {"batching": "serving: {model: Llama-2-70B}", "slots": "slots_per_replica: 64"}


def measure(model: str, requests: int) -> dict:
    """Run one model in this process; CPU seconds of execute() and what it served."""
    import os

    os.environ["MERIDIAN_SERVING_CORE"] = "python" if model == "python" else "compiled"
    from sim.runner import execute
    from sim.scenario import parse_scenario

    pool = POOLS["slots" if model == "slots" else "batching"]
    loaded = parse_scenario(SCENARIO.format(duration=requests / RATE, rate=RATE, pool=pool))
    start = time.process_time()
    outcome = execute(loaded)
    elapsed = time.process_time() - start
    inference = outcome.summary["inference"]
    return {"model": model, "seconds": elapsed, "arrived": inference["arrived"],
            "completed": inference["completed"], "ttft_p99_ms": inference["ttft_ms"]["p99"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(model: str, requests: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", model, "--requests", str(requests)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median of each model is kept")
    parser.add_argument("--python", action="store_true", help="also the Python replicas (about 10x slower)")
    parser.add_argument("--child", choices=("slots", "batching", "python"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.requests)))
        return
    start = time.perf_counter()
    child("batching", 2_000)  # compiles the replicas' code into numba's cache if it is not there yet
    print(f"warm-up run (compiles the replicas' code the first time on a machine): "
          f"{time.perf_counter() - start:.1f} s")
    models = ("slots", "batching", "python") if args.python else ("slots", "batching")
    rounds: dict[str, list[dict]] = {m: [] for m in models}
    for _ in range(args.rounds):
        for m in models:
            rounds[m].append(child(m, args.requests))
    runs = {m: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for m, rs in rounds.items()}
    for name, r in runs.items():
        each = ", ".join(f"{x['seconds']:.2f}" for x in rounds[name])
        print(f"{name:9} {r['arrived']:>10,} requests  {r['arrived'] / r['seconds']:>10,.0f} requests/s  "
              f"(median {r['seconds']:.2f} CPU-s of {each})  completed {r['completed']:,}  "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    per_request = {name: r["seconds"] / r["arrived"] for name, r in runs.items()}
    for name in models[1:]:
        print(f"{name} / slot model, time per request: {per_request[name] / per_request['slots']:.2f}x")
    ttft = {name: r["ttft_p99_ms"] for name, r in runs.items()}
    print("TTFT p99: " + ", ".join(f"{name} {v:.0f} ms" for name, v in ttft.items()))


if __name__ == "__main__":
    main()
