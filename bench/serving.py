"""Benchmark: the batching replica against the slot model, per request, on the same arrivals.

One pool of 8 Llama-2-70B replicas on 8 x H100 each, Poisson arrivals at 30 requests/s
(about 70 % of what the pool can serve), prompts of 1,000 and answers of 250 tokens on
average (lognormal, cv 1): 1,000,000 requests by default. The same scenario runs twice in
one process: with ``serving`` (continuous batching) and as the slot model (64 batch-1
slots per replica, enough to keep that queue stable). Each run is scenario -> world ->
engine -> metrics in memory (``sim.runner.execute``); peak memory is the peak RSS of a
fresh child process per model. Prints requests per second, the ratio of the batching
model's cost per request to the slot model's, and peak memory.

    python bench/serving.py [--requests 1000000]
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
    """Run one model in this process; wall seconds of execute() and what it served."""
    from sim.runner import execute
    from sim.scenario import parse_scenario

    loaded = parse_scenario(SCENARIO.format(duration=requests / RATE, rate=RATE, pool=POOLS[model]))
    start = time.perf_counter()
    outcome = execute(loaded)
    elapsed = time.perf_counter() - start
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
    parser.add_argument("--child", choices=sorted(POOLS))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.requests)))
        return
    runs = {m: child(m, args.requests) for m in ("slots", "batching")}
    for name, r in runs.items():
        print(f"{name:9} {r['arrived']:>10,} requests  {r['arrived'] / r['seconds']:>10,.0f} requests/s  "
              f"({r['seconds']:.2f} s)  completed {r['completed']:,}  peak RSS {r['peak_rss_mib']:.0f} MiB")
    per_request = {name: r["seconds"] / r["arrived"] for name, r in runs.items()}
    print(f"batching / slot model, time per request: {per_request['batching'] / per_request['slots']:.2f}x")
    ttft = {name: r["ttft_p99_ms"] for name, r in runs.items()}
    print(f"TTFT p99: batching {ttft['batching']:.0f} ms, slot model {ttft['slots']:.0f} ms")


if __name__ == "__main__":
    main()
