"""The baseline of bench/whole_process.py: an M/M/c queue in a plain, hand-written heapq loop.

What an engineer would write by hand for one FCFS queue with ``c`` servers: arrival gaps
and service times drawn with numpy, one heap of events ``(time, kind, customer)`` whose
kinds are dispatched inline (an arrival schedules the next arrival and takes a free server
or joins the queue; a departure hands its server to the head of the queue), then the mean
wait, latency percentiles and utilisation written as JSON. The whole process is the
baseline: interpreter start-up, imports, drawing, the loop, the statistics and the file.

    python bench/heapq_mmc.py N [--servers 8] [--rate 7.2] [--mean 1.0] [--seed 1] [--out FILE]
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections import deque

import numpy as np


def simulate(n: int, c: int, rate: float, mean_s: float, seed: int) -> tuple[np.ndarray, ...]:
    """Arrival times, service times and waits of ``n`` customers of an M/M/c queue."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, n)).tolist()
    services = rng.exponential(mean_s, n).tolist()
    waits = [0.0] * n
    heappush, heappop = heapq.heappush, heapq.heappop
    events = [(arrivals[0], 0, 0)]  # kind 0: arrival, 1: departure
    queue: deque[int] = deque()
    free = c
    while events:
        t, kind, j = heappop(events)
        if kind == 0:
            if j + 1 < n:
                heappush(events, (arrivals[j + 1], 0, j + 1))
            if free:
                free -= 1
                heappush(events, (t + services[j], 1, j))
            else:
                queue.append(j)
        elif queue:
            k = queue.popleft()
            waits[k] = t - arrivals[k]
            heappush(events, (t + services[k], 1, k))
        else:
            free += 1
    return np.array(arrivals), np.array(services), np.array(waits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="customers")
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=7.2, help="arrivals per second")
    parser.add_argument("--mean", type=float, default=1.0, help="mean service time, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="write the summary here (default: stdout only)")
    args = parser.parse_args()
    arrivals, services, waits = simulate(args.n, args.servers, args.rate, args.mean, args.seed)
    latency_ms = (waits + services) * 1000.0
    p50, p95, p99 = np.percentile(latency_ms, [50, 95, 99])
    summary = {"requests": args.n, "wait_ms_mean": float(waits.mean() * 1000.0),
               "latency_ms": {"mean": float(latency_ms.mean()), "p50": float(p50), "p95": float(p95),
                              "p99": float(p99)},
               "utilization": float(services.sum() / arrivals[-1] / args.servers)}
    text = json.dumps(summary, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
