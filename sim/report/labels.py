"""Human names for the dotted paths charts are asked about.

``metric_label("inference.ttft_ms.p99")`` is ``"time to first token, p99 (ms)"``;
``param_label("regions.eu-west.pools.a100.replicas")`` is ``"replicas (eu-west/a100)"``.
A path nobody named keeps its own words (underscores as spaces), so a new metric still
reads as something; the dotted path itself stays in the report's tables.

Shares (``utilization.mean``, ``inference.slo_attainment``) are charted in percent, and
times of ten seconds or more in seconds: ``metric_axis(path, top)`` gives the factor and the
label to use.

Public: ``metric_label``, ``metric_axis``, ``param_label``.
"""
from __future__ import annotations

__all__ = ["metric_label", "metric_axis", "param_label", "op_symbol"]

# The last word of a metric path that names a statistic.
_STATS = {"mean": "mean", "p50": "p50", "p95": "p95", "p99": "p99", "max": "max", "min": "min"}
# Words of summary.json, with the unit their values carry.
_WORDS: dict[str, tuple[str, str]] = {
    "ttft_ms": ("time to first token", "ms"),
    "tpot_ms": ("time per output token", "ms"),
    "latency_ms": ("end-to-end latency", "ms"),
    "wait_ms": ("queueing delay", "ms"),
    "kv_transfer_ms": ("KV-cache copy time", "ms"),
    "later_turn_ttft_ms": ("time to first token of later turns", "ms"),
    "slo_attainment": ("SLO attainment", "share"),
    "goodput_rps": ("goodput", "requests/s"),
    "hit_rate": ("hit rate", "share"),
    "later_turn_hit_rate": ("later turns finding their context", "share"),
    "utilization": ("utilisation", "share"),
    "unmet_gpu_hours": ("unmet demand", "GPU-h"),
    "served_gpu_hours": ("served demand", "GPU-h"),
    "demand_gpu_hours": ("demand", "GPU-h"),
    "gpu_hours_used": ("GPU-hours used", "GPU-h"),
    "gpu_hours_lost": ("GPU-hours lost", "GPU-h"),
    "jct_h": ("job completion time", "h"),
    "wait_h": ("job queueing delay", "h"),
    "goodput": ("goodput", "share"),
    "kwh": ("energy", "kWh"),
    "co2_kg": ("carbon", "kg CO2e"),
    "cost_usd": ("electricity cost", "USD"),
    "transfer_cost_usd": ("egress cost", "USD"),
    "bytes_cross_region": ("bytes copied across regions", "B"),
    "border_crossings_bytes": ("bytes across borders", "B"),
    "arrived": ("requests arrived", "requests"),
    "completed": ("completed", "count"),
    "dropped": ("dropped", "count"),
    "rejected": ("rejected", "count"),
    "timed_out": ("timed out", "count"),
    "failed": ("failed", "count"),
}


def _words(part: str) -> str:
    return part.replace("_", " ")


def metric_label(path: str) -> str:
    """``"time to first token, p99 (ms)"`` for ``inference.ttft_ms.p99``; shares say ``(share)``."""
    parts = path.split(".")
    stat = _STATS.get(parts[-1]) if len(parts) > 1 else None
    body = parts[:-1] if stat else parts
    name, unit = _WORDS.get(body[-1], (_words(body[-1]), ""))
    if "prefix_cache" in body[:-1]:
        name = f"prefix cache {name}"
    where = ""
    for i, part in enumerate(body[:-1]):  # inference.by_origin.eastus.latency_ms.p99
        if part.startswith("by_") and i + 1 < len(body) - 1:
            where = body[i + 1]
    label = name + (f" ({where})" if where else "") + (f", {stat}" if stat else "")
    return f"{label} ({unit})" if unit and unit != "count" else label


def metric_axis(path: str, top: float | None = None) -> tuple[float, str]:
    """(factor, label) to chart ``path`` with: a share times 100 and labelled ``(%)``; a
    time in ms in seconds when the largest value to draw, ``top``, reaches 10,000 ms;
    anything else as it is with :func:`metric_label`."""
    label = metric_label(path)
    if label.endswith(" (share)"):
        return 100.0, label[: -len(" (share)")] + " (%)"
    if label.endswith(" (ms)") and top is not None and abs(top) >= 10_000:
        return 0.001, label[: -len(" (ms)")] + " (s)"
    return 1.0, label


_SETTINGS: dict[str, tuple[str, str]] = {
    "rate_per_s": ("arrival rate", "requests/s"), "replicas": ("replicas", ""),
    "mttf": ("mean time to failure", "s"), "sync_delay": ("control-plane staleness", "s"),
    "max_batch": ("max batch", "sequences"), "gpus_per_replica": ("GPUs per replica", ""),
    "slots_per_replica": ("slots per replica", ""),
}
_STRUCTURE = {"regions", "pools", "inference", "arrival", "serving", "scheduler", "failures", "nodes", "training",
              "service", "params", "allocation", "metrics", "network", "links", "datasets", "consistency"}


def param_label(path: str) -> str:
    """A scenario path as a setting: ``replicas of eu-west/a100``, ``arrival rate of chat (requests/s)``."""
    parts = path.split(".")
    name, unit = _SETTINGS.get(parts[-1], (_words(parts[-1]), ""))
    names = [p for p in parts[:-1] if p not in _STRUCTURE and not p.isdigit()]
    label = f"{name} of {'/'.join(names)}" if names else name
    return f"{label} ({unit})" if unit else label


def op_symbol(op: str) -> str:
    """``≤`` for ``<=``, ``≥`` for ``>=`` (a target's comparison as a reader writes it)."""
    return {"<=": "≤", ">=": "≥"}.get(op, op)
