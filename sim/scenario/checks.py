"""Semantic checks: rules that span fields, run after the schema has accepted a scenario.

Each check yields ``(path, rule, value)`` with ``path`` a tuple of keys/indices into the
scenario document, so the loader can add the file and line. The checks need the region and
GPU catalogues (pure data) and the link graph's connectivity (networkx).

Public: ``check_scenario``.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import networkx as nx

from sim.scenario.model import (
    ConstantLoad,
    Dataset,
    DiurnalLoad,
    InferenceWorkload,
    LinearLoad,
    ObservedLoad,
    PiecewiseLoad,
    Scenario,
    StepLoad,
    TrainingWorkload,
    replica_range,
)
from sim.world.catalogue import catalogue_region, gpu_catalogue
from sim.world.llm_catalogue import LLM_CATALOGUE, kv_capacity_tokens, llm_spec

__all__ = ["check_scenario", "residency_allows", "copy_endpoints"]

Finding = tuple[tuple[Any, ...], str, Any]
_NO_VALUE = object()


def check_scenario(s: Scenario) -> list[Finding]:
    """All semantic problems of ``s``, in document order."""
    checks = (_check_times, _check_regions, _check_serving, _check_links, _check_reachability, _check_scheduler,
              _check_allocation, _check_inference, _check_disaggregation, _check_datasets, _check_training,
              _check_transfers, _check_failures, _check_consistency, _check_autoscaling)
    return [finding for check in checks for finding in check(s)]


def _check_times(s: Scenario) -> Iterator[Finding]:
    if s.warmup >= s.duration:
        yield ("warmup",), f"must be shorter than duration ({s.duration:g} s)", s.warmup
    yield from _check_points(s.scheduler.load_model, ("scheduler", "load_model"))
    allocation = s.scheduler.allocation
    yield from _check_peak(s.scheduler.load_model, s.duration, ("scheduler", "load_model"),
                           allocation.L_max if allocation is not None else None)
    for i, wl in enumerate(s.inference):
        if wl.arrival.process == "poisson":
            yield from _check_points(wl.arrival.profile, ("inference", i, "arrival", "profile"))
            yield from _check_peak(wl.arrival.profile, s.duration, ("inference", i, "arrival", "profile"))


MAX_LOAD = 1e12  # load units: far beyond any fleet, far below where sums over a run overflow


def _check_peak(model: Any, duration_s: float, path: tuple, l_max: float | None = None) -> Iterator[Finding]:
    """A load formula's largest value over the run must stay within ``MAX_LOAD``: finite but
    huge values (L0: 1e308) overflowed the run's means into null and the run "succeeded".
    The field blamed is the one that makes the peak (so a ``--set`` of it is named). So must
    the allocation's ``L / L_max`` (``l_max``, when the formula drives an allocation)."""
    if isinstance(model, ObservedLoad):
        if model.forecast is not None:
            yield from _check_peak(model.forecast, duration_s, path + ("forecast",), l_max)
        return
    field: tuple[str | int, ...]
    if isinstance(model, LinearLoad):  # straight: its extremes are at the ends of the run
        hours = duration_s / 3600.0
        peak = max(abs(model.L0 + model.alpha * (t - model.T0)) for t in (0.0, hours))
        terms = {"L0": abs(model.L0), "alpha": abs(model.alpha) * max(hours, 1.0), "T0": abs(model.alpha * model.T0)}
        name = max(terms, key=lambda k: terms[k])
        field, value = (name,), getattr(model, name)
    elif isinstance(model, ConstantLoad):
        peak, field, value = model.L, ("L",), model.L
    elif isinstance(model, DiurnalLoad):
        peak, field, value = model.mean * (1.0 + model.amplitude), ("mean",), model.mean
    elif isinstance(model, StepLoad):
        peak = max(model.before, model.after)
        field, value = (("before",), model.before) if model.before >= model.after else (("after",), model.after)
    elif isinstance(model, PiecewiseLoad):
        i = max(range(len(model.points)), key=lambda k: model.points[k].L)
        peak, field, value = model.points[i].L, ("points", i, "L"), model.points[i].L
    else:
        return
    if not peak <= MAX_LOAD:  # also inf and nan
        yield path + field, f"the load reaches {peak:.3g} over the run; it must stay within {MAX_LOAD:g}", value
    elif l_max is not None and not peak / l_max <= MAX_LOAD:
        yield (("scheduler", "allocation", "L_max"), f"the load reaches {peak:.3g} over the run, {peak / l_max:.3g} "
               f"times L_max; L / L_max must stay within {MAX_LOAD:g}", l_max)


def _check_points(model, path: tuple) -> Iterator[Finding]:
    if model is None or model.kind != "piecewise":
        return
    times = [p.at for p in model.points]
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            yield path + ("points", i, "at"), "points must be in strictly increasing time", times[i]


def _check_scheduler(s: Scenario) -> Iterator[Finding]:
    regions = [r.name for r in s.regions]
    for name, delay in s.scheduler.sync_delay_by_region.items():
        if name not in regions:
            yield ("scheduler", "sync_delay_by_region", name), f"unknown region (known: {', '.join(regions)})", name
        elif delay < 0:
            yield ("scheduler", "sync_delay_by_region", name), "must be >= 0", delay
    has_load, has_alloc = s.scheduler.load_model is not None, s.scheduler.allocation is not None
    if has_load != has_alloc:
        missing = "allocation" if has_load else "load_model"
        yield ("scheduler",), f"load_model and allocation go together: {missing} is missing", _NO_VALUE
    model = s.scheduler.load_model
    if isinstance(model, ObservedLoad):
        if not s.inference:
            yield (("scheduler", "load_model", "kind"), "an observed load needs inference workloads to observe",
                   "observed")
        if model.drive == "forecast" and model.forecast is None:
            yield ("scheduler", "load_model", "drive"), "drive: forecast needs a forecast formula", "forecast"


def _check_regions(s: Scenario) -> Iterator[Finding]:
    for i, region in enumerate(s.regions):
        names = [h.name for h in region.hosts]
        for k, name in enumerate(names):
            if name in names[:k]:
                yield ("regions", i, "hosts", k, "name"), "duplicate host name in the region", name
    seen: dict[str, int] = {}
    gpus = gpu_catalogue()
    for i, region in enumerate(s.regions):
        if region.name in seen:
            yield ("regions", i, "name"), f"duplicate region name (also regions[{seen[region.name]}])", region.name
        seen.setdefault(region.name, i)
        if catalogue_region(region.name) is None:
            for field in ("lat", "lon"):
                if getattr(region, field) is None:
                    yield ("regions", i), f"{field} is required for a region not in the catalogue", region.name
        pool_names: set[str] = set()
        for j, pool in enumerate(region.pools):
            if pool.name in pool_names:
                yield ("regions", i, "pools", j, "name"), "duplicate pool name in region", pool.name
            pool_names.add(pool.name)
            if pool.gpu not in gpus:
                valid = ", ".join(sorted(gpus))
                yield ("regions", i, "pools", j, "gpu"), f"unknown GPU type (valid: {valid})", pool.gpu
    if not any(region.pools for region in s.regions):
        yield ("regions",), "no region has a GPU pool, so nothing can ever be served", _NO_VALUE


def _check_serving(s: Scenario) -> Iterator[Finding]:
    """Batching pools: a known model that fits the replica's memory, one server per replica,
    and workloads with token counts."""
    batching = []
    for i, region in enumerate(s.regions):
        for j, pool in enumerate(region.pools):
            if pool.serving is None:
                continue
            path = ("regions", i, "pools", j)
            batching.append(path)
            yield from _serving_findings(pool, path)
    if batching:
        for k, wl in enumerate(s.inference):
            if wl.service.dist != "tokens":
                yield (("inference", k, "service", "dist"), "batching pools serve token workloads only "
                       f"(regions[{batching[0][1]}].pools[{batching[0][3]}] has serving): use dist: tokens",
                       wl.service.dist)


def _serving_findings(pool, path: tuple) -> Iterator[Finding]:
    serving = pool.serving
    if pool.serves == "training":
        yield path + ("serving",), "applies to pools that serve inference (serves is training)", pool.serves
    if pool.slots_per_replica != 1:  # 1, the default, is what resolved.yaml writes back
        yield path + ("slots_per_replica",), "a batching replica's concurrency comes from its KV cache and " \
            "serving.max_batch: remove slots_per_replica", pool.slots_per_replica
    tp = serving.tensor_parallel
    if tp is not None and tp != pool.gpus_per_replica:
        yield (path + ("serving", "tensor_parallel"), f"must equal gpus_per_replica ({pool.gpus_per_replica}): "
               "a replica is one server", tp)
    try:
        model = llm_spec(serving.model)
    except KeyError:
        yield (path + ("serving", "model"), f"unknown model (valid: {', '.join(sorted(LLM_CATALOGUE))})",
               serving.model)
        return
    gpus = gpu_catalogue()
    if pool.gpu not in gpus:
        return
    try:
        kv_capacity_tokens(model, gpus[pool.gpu], pool.gpus_per_replica, serving.gpu_memory_utilization)
    except ValueError as exc:
        yield path + ("serving", "model"), str(exc), serving.model


def _check_links(s: Scenario) -> Iterator[Finding]:
    names = {r.name for r in s.regions}
    pairs: dict[frozenset[str], int] = {}
    for i, link in enumerate(s.links):
        for end in ("a", "b"):
            if getattr(link, end) not in names:
                known = ", ".join(r.name for r in s.regions)
                yield ("links", i, end), f"unknown region (known: {known})", getattr(link, end)
        if link.a == link.b:
            yield ("links", i), "a link must join two different regions", link.a
        pair = frozenset((link.a, link.b))
        if pair in pairs:
            yield ("links", i), f"duplicate link (also links[{pairs[pair]}])", f"{link.a}-{link.b}"
        pairs.setdefault(pair, i)


def _check_reachability(s: Scenario) -> Iterator[Finding]:
    names = {r.name for r in s.regions}
    if not s.explicit_mesh or len(s.regions) < 2 or any({link.a, link.b} - names for link in s.links):
        return  # a link to an unknown region is reported already
    graph = _link_graph(s)
    first = s.regions[0].name
    reachable = nx.node_connected_component(graph, first)
    for i, region in enumerate(s.regions):
        if region.name not in reachable:
            yield ("regions", i, "name"), f"region is unreachable from {first!r} in the link graph", region.name


def _check_allocation(s: Scenario) -> Iterator[Finding]:
    if s.scheduler.allocation is None:
        return
    weights = s.scheduler.allocation.weights
    pools = {r.name: {p.name for p in r.pools} for r in s.regions}
    for key in weights:
        region, _, pool = key.partition("/")
        path = ("scheduler", "allocation", "weights", key)
        if region not in pools:
            yield path, f"unknown region (known: {', '.join(pools)})", key
        elif not pools[region]:
            yield path, "region has no GPU pools to allocate", key
        elif pool and pool not in pools[region]:
            yield path, f"unknown pool (pools of {region}: {', '.join(sorted(pools[region]))})", key
    if weights and sum(weights.values()) <= 0:
        yield ("scheduler", "allocation", "weights"), "weights must not sum to zero", dict(weights)
    regions_named = [k for k in weights if "/" not in k]
    for key in weights:
        region = key.partition("/")[0]
        if "/" in key and region in regions_named:
            path = ("scheduler", "allocation", "weights", key)
            yield path, f"region {region!r} is weighted both as a whole and by pool", key


def _check_disaggregation(s: Scenario) -> Iterator[Finding]:
    """A prefill pool needs a decode pool of the same model to send its KV caches to."""
    decoders = {p.serving.model for r in s.regions for p in r.pools
                if p.serving is not None and p.serving.role == "decode" and p.serves != "training"}
    for i, region in enumerate(s.regions):
        for k, pool in enumerate(region.pools):
            if pool.serving is not None and pool.serving.role == "prefill" and pool.serving.model not in decoders:
                yield (("regions", i, "pools", k, "serving", "role"),
                       f"a prefill pool needs a decode pool (serving.role: decode) of {pool.serving.model} to send "
                       "its KV caches to", "prefill")


def _check_inference(s: Scenario) -> Iterator[Finding]:
    names = [r.name for r in s.regions]
    serving = {r.name for r in s.regions if r.pools}
    graph = _graph(s)
    seen: set[str] = set()
    for i, wl in enumerate(s.inference):
        if wl.name in seen:
            yield ("inference", i, "name"), "duplicate workload name", wl.name
        seen.add(wl.name)
        where = serving
        if wl.model is not None:
            where = {r.name for r in s.regions for p in r.pools
                     if p.serving is not None and p.serving.model == wl.model and p.serves != "training"}
            if not where:
                loaded = sorted({p.serving.model for r in s.regions for p in r.pools if p.serving is not None})
                yield (("inference", i, "model"), "no pool serves this model (pools with serving.model: "
                       f"{', '.join(loaded) or 'none'})", wl.model)
                where = serving
        yield from _origin_findings(i, wl, names, graph, where)
        yield from _token_findings(i, wl)
        yield from _limit_findings(i, wl)


def _origin_findings(i: int, wl: InferenceWorkload, names: list[str], graph: nx.Graph | None,
                     where: set[str]) -> Iterator[Finding]:
    """Origins that are no region or reach no region in ``where`` (those that can serve
    the workload), and weights that sum to zero."""
    for origin in wl.origin:
        if origin not in names:
            yield ("inference", i, "origin", origin), f"unknown region (known: {', '.join(names)})", origin
        elif graph is not None and not where & nx.node_connected_component(graph, origin):
            yield (("inference", i, "origin", origin),
                   "no region with GPU pools is reachable from this origin: the workload can never be served",
                   origin)
    if sum(wl.origin.values()) <= 0:
        yield ("inference", i, "origin"), "origin weights must not sum to zero", dict(wl.origin)


def _token_findings(i: int, wl: InferenceWorkload) -> Iterator[Finding]:
    """Coefficients for GPUs the catalogue lacks; sessions and shared prefixes outside a
    token workload (both are counted in tokens)."""
    if wl.service.dist == "tokens":
        gpus = gpu_catalogue()
        for key in wl.service.coefficients:
            if key not in gpus:
                yield (("inference", i, "service", "coefficients", key),
                       f"unknown GPU type (valid: {', '.join(sorted(gpus))})", key)
    if wl.sessions is not None and wl.service.dist != "tokens":
        yield (("inference", i, "sessions"), "needs a token workload (service.dist: tokens): a turn's prompt "
               "is the conversation so far, in tokens", wl.service.dist)
    if wl.shared_prefix is not None and wl.service.dist != "tokens":
        yield (("inference", i, "shared_prefix"), "needs a token workload (service.dist: tokens): a shared "
               "prompt is counted in tokens", wl.service.dist)


def _limit_findings(i: int, wl: InferenceWorkload) -> Iterator[Finding]:
    """An end-to-end SLO given twice, and a timeout shorter than it."""
    if wl.slo_ms is not None and wl.slo.e2e_ms is not None:
        yield ("inference", i, "slo_ms"), "is an alias of slo.e2e_ms: give one of them", wl.slo_ms
    e2e = wl.e2e_slo_ms
    if wl.timeout_ms is not None and e2e is not None and wl.timeout_ms < e2e:
        yield ("inference", i, "timeout_ms"), f"is shorter than the end-to-end SLO ({e2e:g} ms)", wl.timeout_ms


def _graph(s: Scenario) -> nx.Graph | None:
    """The link graph when it is explicit (a full mesh connects everything)."""
    return _link_graph(s) if s.explicit_mesh else None


def _link_graph(s: Scenario) -> nx.Graph:
    """The regions joined by the scenario's ``links`` (links to unknown regions left out)."""
    graph: nx.Graph = nx.Graph()
    graph.add_nodes_from(r.name for r in s.regions)
    graph.add_edges_from((link.a, link.b) for link in s.links if link.a in graph and link.b in graph)
    return graph


def _check_datasets(s: Scenario) -> Iterator[Finding]:
    regions = {r.name: r for r in s.regions}
    known = ", ".join(regions)
    seen: set[str] = set()
    for i, ds in enumerate(s.datasets):
        if ds.name in seen:
            yield ("datasets", i, "name"), "duplicate dataset name", ds.name
        seen.add(ds.name)
        for path, name in [(("home",), ds.home)] + [(("replicas", k), r) for k, r in enumerate(ds.replicas)]:
            if name not in regions:
                yield ("datasets", i) + path, f"unknown region (known: {known})", name
        rule = ds.residency
        if rule is None:
            continue
        for k, name in enumerate(rule.allowed_regions or []):
            if name not in regions:
                yield ("datasets", i, "residency", "allowed_regions", k), f"unknown region (known: {known})", name
        if rule.allowed_regions is None and rule.allowed_jurisdictions is None:
            yield ("datasets", i, "residency"), "give allowed_regions or allowed_jurisdictions", _NO_VALUE
        if rule.mode == "hard":
            for path, name in [(("home",), ds.home)] + [(("replicas", k), r) for k, r in enumerate(ds.replicas)]:
                if name in regions and not residency_allows(s, ds, name):
                    yield ("datasets", i) + path, "a copy stored here breaks the dataset's hard residency rule", name


def residency_allows(s: Scenario, dataset, region: str) -> bool:
    """Whether ``dataset`` may be in ``region`` under its residency rule (ignoring its mode)."""
    rule = dataset.residency
    if rule is None:
        return True
    if rule.allowed_regions is not None and region not in rule.allowed_regions:
        return False
    if rule.allowed_jurisdictions is not None:
        jurisdiction = _jurisdiction(s, region)
        return jurisdiction in rule.allowed_jurisdictions
    return True


def _jurisdiction(s: Scenario, name: str) -> str | None:
    for region in s.regions:
        if region.name == name:
            if region.jurisdiction is not None:
                return region.jurisdiction
            cat = catalogue_region(name)
            return cat.jurisdiction if cat is not None else None
    return None


def _check_training(s: Scenario) -> Iterator[Finding]:
    gpus = gpu_catalogue()
    datasets = {d.name: d for d in s.datasets}
    seen: set[str] = set()
    for i, wl in enumerate(s.training):
        if wl.name in seen:
            yield ("training", i, "name"), "duplicate workload name", wl.name
        seen.add(wl.name)
        if wl.dataset is not None and wl.dataset not in datasets:
            yield ("training", i, "dataset"), f"unknown dataset (known: {', '.join(datasets) or 'none'})", wl.dataset
        named: list[tuple[tuple[Any, ...], str]] = [(("gpu_types", k), g) for k, g in enumerate(wl.gpu_types or [])]
        work = getattr(wl.jobs, "work", None)
        if work is not None and work.kind == "steps":
            named += [(("jobs", "work", "throughput_steps_per_s", g), g) for g in work.throughput_steps_per_s]
        ref = getattr(work, "reference_gpu", None) or getattr(wl.jobs, "reference_gpu", None)
        if ref is not None:
            path = ("jobs", "work", "reference_gpu") if work is not None else ("jobs", "reference_gpu")
            named.append((path, ref))
        for path, name in named:
            if name not in gpus:
                yield ("training", i) + path, f"unknown GPU type (valid: {', '.join(sorted(gpus))})", name
        regions = [r.name for r in s.regions]
        for k, name in enumerate(wl.checkpoint.replicate_to):
            if name not in regions:
                yield (("training", i, "checkpoint", "replicate_to", k),
                       f"unknown region (known: {', '.join(regions)})", name)
        if wl.checkpoint.replicate_to and wl.checkpoint.size_gb <= 0:
            yield ("training", i, "checkpoint", "size_gb"), "must be > 0 when replicate_to is given", 0.0
        yield from _check_trainable(s, i, wl, datasets.get(wl.dataset) if wl.dataset is not None else None)


def _check_trainable(s: Scenario, i: int, wl: TrainingWorkload, dataset: Dataset | None) -> Iterator[Finding]:
    """A workload that no pool could ever run is an error, not an empty result."""
    pools = [(r.name, p) for r in s.regions for p in r.pools if p.serves != "inference"]
    if wl.gpu_types is not None:
        allowed_types = {gpu_catalogue()[g].name for g in wl.gpu_types if g in gpu_catalogue()}
        pools = [(r, p) for r, p in pools if p.gpu in gpu_catalogue() and gpu_catalogue()[p.gpu].name in allowed_types]
    if dataset is not None and dataset.residency is not None and dataset.residency.mode == "hard":
        pools = [(r, p) for r, p in pools if residency_allows(s, dataset, r)]
    if not pools:
        yield ("training", i), "no pool can ever run these jobs (GPU types, pool roles, residency)", wl.name
        return
    jobs = wl.jobs
    gang = getattr(jobs, "gpus", None)
    sizes = [gang] if isinstance(gang, int) else list(getattr(gang, "choices", []))
    per_region: dict[str, int] = {}
    for region, pool in pools:
        per_region[region] = per_region.get(region, 0) + pool.replicas * pool.gpus_per_replica
    largest = sum(per_region.values()) if wl.span_regions else max(per_region.values())
    for size in sizes:
        if size > largest:
            yield (("training", i, "jobs", "gpus"),
                   f"a gang of {size} GPUs fits in no region (largest usable: {largest} GPUs)", size)


def _check_transfers(s: Scenario) -> Iterator[Finding]:
    if s.transfers is None:
        return
    regions = [r.name for r in s.regions]
    places = copy_endpoints(s)
    datasets = {d.name: d for d in s.datasets}
    for i, copy in enumerate(s.transfers.copies):
        path = ("transfers", "copies", i)
        for key in ("src", "dst"):
            if getattr(copy, key) not in places:
                yield (path + (key,), f"unknown region or region/host (known: {', '.join(places)})",
                       getattr(copy, key))
        dataset = datasets.get(copy.dataset) if copy.dataset is not None else None
        if copy.dataset is not None and dataset is None:
            yield path + ("dataset",), f"unknown dataset (known: {', '.join(datasets) or 'none'})", copy.dataset
        if copy.size_gb is None and dataset is None:
            yield path, "give size_gb (or the dataset it copies)", _NO_VALUE
        if not copy.at and copy.rate_per_h is None:
            yield path, "give at (copies at given times) or rate_per_h (a stream): nothing would be copied", _NO_VALUE
        for k, t in enumerate(copy.at):
            if t >= s.duration:
                yield path + ("at", k), f"must be before the end of the run ({s.duration:g} s)", t
        region = copy.dst.partition("/")[0]
        if (dataset is not None and region in regions and dataset.residency is not None
                and dataset.residency.mode == "hard" and not residency_allows(s, dataset, region)):
            yield path + ("dst",), f"dataset {dataset.name!r} may not be stored there (hard residency rule)", copy.dst


def copy_endpoints(s: Scenario) -> list[str]:
    """Where a copy may start or end: every region, and every ``region/host``."""
    return [r.name for r in s.regions] + [f"{r.name}/{h.name}" for r in s.regions for h in r.hosts]


def _check_failures(s: Scenario) -> Iterator[Finding]:
    f = s.failures
    if f is None:
        return
    regions = {r.name: r for r in s.regions}
    keys = {f"{r.name}/{p.name}" for r in s.regions for p in r.pools}
    for i, spec in enumerate(f.nodes):
        for k, name in enumerate(spec.pools):
            if name not in keys and name not in regions:
                yield (("failures", "nodes", i, "pools", k),
                       f"not a pool (region/pool) or region (pools: {', '.join(sorted(keys))})", name)
    yield from _check_domains(s)
    for i, outage in enumerate(f.outages):
        if outage.region not in regions:
            yield ("failures", "outages", i, "region"), f"unknown region (known: {', '.join(regions)})", outage.region
        if (outage.at is None) == (outage.rate_per_year is None):
            yield ("failures", "outages", i), "give exactly one of at (scheduled) or rate_per_year (random)", _NO_VALUE
        elif outage.at is not None and outage.at >= s.duration:
            yield ("failures", "outages", i, "at"), f"must be before the end of the run ({s.duration:g} s)", outage.at
    for i, cut in enumerate(f.links):
        pair = cut.a is not None or cut.b is not None
        if pair == (cut.regions is not None) or (pair and (cut.a is None or cut.b is None)):
            yield ("failures", "links", i), "give a and b (one link) or regions (a partition)", _NO_VALUE
        ends: list[tuple[tuple[Any, ...], str | None]] = [(("a",), cut.a), (("b",), cut.b)]
        for key, end in ends + [(("regions", k), r) for k, r in enumerate(cut.regions or [])]:
            if end is not None and end not in regions:
                path = ("failures", "links", i) + key
                yield path, f"unknown region (known: {', '.join(regions)})", end
        if cut.at >= s.duration:
            yield ("failures", "links", i, "at"), f"must be before the end of the run ({s.duration:g} s)", cut.at


def _check_domains(s: Scenario) -> Iterator[Finding]:
    assert s.failures is not None
    sizes = {f"{r.name}/{p.name}": p.replicas for r in s.regions for p in r.pools}
    seen: set[str] = set()
    for i, domain in enumerate(s.failures.domains):
        path = ("failures", "domains", i)
        if domain.name in seen:
            yield path + ("name",), "duplicate domain name", domain.name
        seen.add(domain.name)
        if domain.mttf is None and not domain.at:
            yield path, "give mttf (random events) or at (scheduled ones): the domain would never fail", _NO_VALUE
        for k, t in enumerate(domain.at):
            if t >= s.duration:
                yield path + ("at", k), f"must be before the end of the run ({s.duration:g} s)", t
        for key, text in domain.members.items():
            if key not in sizes:
                yield path + ("members", key), f"not a pool (region/pool) (pools: {', '.join(sorted(sizes))})", key
                continue
            indices = replica_range(text)
            if indices is None:
                yield path + ("members", key), "must be a replica range like \"0-3\", one index, or all", text
            elif indices and indices.stop > sizes[key]:
                yield (path + ("members", key),
                       f"replica indices must lie in 0..{sizes[key] - 1} (the pool has {sizes[key]})", text)


def _check_consistency(s: Scenario) -> Iterator[Finding]:
    c = s.consistency
    if c is None:
        return
    regions = [r.name for r in s.regions]
    if c.source is not None and c.source not in regions:
        yield ("consistency", "source"), f"unknown region (known: {', '.join(regions)})", c.source
    elif c.source is not None and not any(r.pools for r in s.regions if r.name == c.source):
        yield ("consistency", "source"), "the source region has no GPU pool", c.source
    names = [w.name for w in s.training]
    for k, name in enumerate(c.on_training):
        if name not in names:
            known = ", ".join(names) or "none"
            yield ("consistency", "on_training", k), f"unknown training workload (known: {known})", name
    for k, t in enumerate(c.at):
        if t >= s.duration:
            yield ("consistency", "at", k), f"must be before the end of the run ({s.duration:g} s)", t
    if not c.at and c.every is None and not c.on_training:
        yield ("consistency",), "give at, every or on_training: nothing would be released", _NO_VALUE


def _check_autoscaling(s: Scenario) -> Iterator[Finding]:
    """Autoscaled pools: bounds inside the pool, weights to load and a place to load them
    from; the autoscaler needs pools to scale and requests whose signals it reads."""
    scaled = [(("regions", i, "pools", j), pool) for i, region in enumerate(s.regions)
              for j, pool in enumerate(region.pools) if pool.autoscale is not None]
    if s.scheduler.autoscaling is None:
        for path, _ in scaled:
            yield path + ("autoscale",), "needs scheduler.autoscaling (the autoscaler that applies it)", _NO_VALUE
        return
    if not scaled:
        yield (("scheduler", "autoscaling"), "no pool has an autoscale section (regions[].pools[].autoscale)",
               _NO_VALUE)
    if not s.inference:
        yield ("scheduler", "autoscaling"), "needs inference workloads (it scales on their signals)", _NO_VALUE
    for path, pool in scaled:
        yield from _autoscale_findings(s, pool, path + ("autoscale",))
    yield from _gpu_group_findings(s)


def _gpu_group_findings(s: Scenario) -> Iterator[Finding]:
    """A pool's group exists in its region; the group's members fit it at their minimum
    and at the start, and share one GPU type (the group is one cluster)."""
    for i, region in enumerate(s.regions):
        groups = {g.name: g.gpus for g in region.gpu_groups}
        if len(groups) != len(region.gpu_groups):
            yield ("regions", i, "gpu_groups"), "duplicate group name", [g.name for g in region.gpu_groups]
        start: dict[str, int] = {}
        kind: dict[str, str] = {}
        for j, pool in enumerate(region.pools):
            config = pool.autoscale
            if config is None or config.group is None:
                continue
            if config.group not in groups:
                yield (("regions", i, "pools", j, "autoscale", "group"),
                       f"no such gpu group in {region.name} (known: {', '.join(groups) or 'none'})", config.group)
                continue
            if kind.setdefault(config.group, pool.gpu) != pool.gpu:
                yield (("regions", i, "pools", j, "gpu"), f"pools of gpu group {config.group} share one GPU "
                       f"type ({kind[config.group]})", pool.gpu)
            first = config.min if config.initial is None else config.initial
            start[config.group] = start.get(config.group, 0) + first * pool.gpus_per_replica
        for k, group in enumerate(region.gpu_groups):
            if start.get(group.name, 0) > group.gpus:
                yield (("regions", i, "gpu_groups", k, "gpus"), f"its pools start with {start[group.name]} GPUs "
                       "(autoscale.initial, else min, x gpus_per_replica)", group.gpus)


def _autoscale_findings(s: Scenario, pool, path: tuple) -> Iterator[Finding]:
    config = pool.autoscale
    top = pool.replicas if config.max is None else config.max
    if pool.serves == "training" or (pool.serves == "both" and s.training):
        yield path, "applies to pools that serve inference only (serves: inference when training runs)", pool.serves
    if config.max is not None and config.max > pool.replicas:
        yield path + ("max",), f"must be <= the pool's replicas ({pool.replicas})", config.max
    if config.min > top:
        yield path + ("min",), f"must be <= max ({top})", config.min
    if config.initial is not None and not config.min <= config.initial <= top:
        yield path + ("initial",), f"must be between min ({config.min}) and max ({top})", config.initial
    if config.weights_gb is None and pool.serving is None:
        yield path + ("weights_gb",), "is required without a serving section (no model to size the weights)", \
            _NO_VALUE
    if config.weights_from == "nearest":
        yield from _weights_holder(s, pool, path)


def _weights_holder(s: Scenario, pool, path: tuple) -> Iterator[Finding]:
    if pool.serving is None:
        yield path + ("weights_from",), "nearest needs a serving section (the model whose holders to ask)", "nearest"
        return
    here = next(r.name for r in s.regions if any(p is pool for p in r.pools))
    if not any(p.serving is not None and p.serving.model == pool.serving.model
               for r in s.regions if r.name != here for p in r.pools):
        yield (path + ("weights_from",), f"nearest: no other region has a pool serving {pool.serving.model}",
               "nearest")
