"""Calibration: a trace and a skeleton in, a system model with a provenance block out.

What is measured comes from the trace (the part before the hold-out split): the request-class
mix and entry points, the call graph with routing probabilities and fan-out (from spans),
service-time distributions per service and class, payload sizes, key popularity, cache hit
times, the arrival rate and its burstiness, error rates.  What a trace cannot reveal (instances,
workers, queues, pools, cache capacities, timeouts, prices) comes from the skeleton.

>>> cal = calibrate(trace, load_skeleton("models/skeleton.yaml"))      # doctest: +SKIP
>>> fid = assess(cal, replications=5, seed=0)                             # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .. import __version__
from ..sim import run_replications
from ..spec import SystemModel, validate_model
from ..traces.schema import TraceError
from ..traces.spangraph import exclusive_times
from .calls import merge_calls
from .checks import capacity_warnings, drift_warnings, rate_warnings, sample_warnings
from .fidelity import Fidelity, Thresholds, compare, twin_latencies
from .fit import Fit, TooFewSamples, fit_distribution
from .popularity import dispersion_curve, fit_zipf
from .requests import ClassMap, Split, arrival_table, class_map, key_ids, roots, split_in_time
from .routing import Edge, concurrency, edges
from .service_times import ServiceFit, fit_from_latency, fit_services, request_class_of_spans
from .skeleton import Skeleton

MIN_REQUESTS = 200  # below this the trace is too short to fit anything worth simulating


@dataclass(frozen=True)
class Calibration:
    model: SystemModel
    trace: pd.DataFrame
    split: Split
    classes: ClassMap
    keys: dict[str, int]
    services: dict[str, ServiceFit]
    payloads: dict[str, Fit]
    edges: list[Edge]
    warnings: list[str] = field(default_factory=list)
    resolution_s: float = 0.0  # how finely the trace timed requests (1 s in Common Log Format)

    def with_fidelity(self, fidelity: Fidelity) -> "Calibration":
        data = self.model.model_dump(by_alias=True)
        data["provenance"] = {**data["provenance"], "fidelity": plain(fidelity.to_dict())}
        return replace(self, model=validate_model(data, source="calibrated model"))


def plain(obj):
    """Provenance as plain YAML/JSON values: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def _dist(fit: Fit) -> dict:
    """The fitted distribution for the model file, its parameters to 6 significant digits."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) else
            ([float(f"{x:.6g}") for x in v] if isinstance(v, list) else v)
            for k, v in fit.dist.model_dump(by_alias=True).items()}


def calibrate(trace: pd.DataFrame, skeleton: Skeleton, *, holdout: float = 0.3, seed: int = 0,
              max_classes: int = 12, name: str | None = None, inputs: list[dict] | None = None,
              utilisation: dict[str, pd.Series] | None = None) -> Calibration:
    """Fit ``skeleton`` to the first ``1 - holdout`` of ``trace`` (a contract frame).

    ``inputs`` describe the files read (``twin.traces.read_traces``); their ``time_resolution_s``
    says how finely the trace timed requests.  ``utilisation`` (per service, a busy-fraction
    series) cross-checks service times measured from latencies.
    """
    rng = np.random.default_rng(seed)
    warnings: list[str] = []
    if len(roots(trace)) < MIN_REQUESTS:
        raise TraceError(f"the trace holds {len(roots(trace))} requests; calibration needs at least {MIN_REQUESTS}")
    if trace["span_id"].notna().any() and trace["exclusive_s"].isna().all():
        # a span table without them: only server spans to go by
        trace = trace.assign(exclusive_s=exclusive_times(trace).to_numpy())
        warnings.append("exclusive times computed from server spans alone: a callee's queue wait counts as its "
                        "caller's time; traces with client spans (OTLP, Jaeger) or an exclusive_s column avoid it")
    base = skeleton.model
    seen = _check_services(trace, base, skeleton.path, warnings)
    split = split_in_time(trace, holdout)
    requests = roots(split.train)
    classes = class_map(requests, max_classes=max_classes)
    keys = key_ids(split.train, split.test)
    resolution = max([float(i.get("time_resolution_s") or 0.0) for i in inputs or []], default=0.0)
    data = base.model_dump(by_alias=True)
    prov: dict = {"calibrated_by": f"twin {__version__}",
                  "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "skeleton": skeleton.path, "inputs": inputs or [],
                  "time_range": {"start": _iso(trace["timestamp"].iloc[0]), "end": _iso(trace["timestamp"].iloc[-1]),
                                 "split_at": _iso(split.at), "holdout": holdout},
                  "requests": {"train": int(len(requests)), "held_out": int(len(roots(split.test)))}}
    payloads = _fit_classes(data, prov, requests, classes, keys, base, rng, warnings)
    services_in_trace = [s for s in seen if s in base.services]
    _prune_class_references(data, set(data["classes"]), set(services_in_trace), warnings)
    fits, found_edges = _fit_services(data, prov, split, classes, base, services_in_trace, rng, warnings,
                                      utilisation or {}, resolution)
    _fit_arrivals(data, prov, requests, split, trace, warnings)
    if name:
        data["name"] = name
    prov["warnings"] = warnings
    data["provenance"] = plain(prov)
    model = validate_model(data, source="calibrated model")
    return Calibration(model, trace, split, classes, keys, fits, payloads, found_edges, warnings, resolution)


def _check_services(trace, base: SystemModel, path: str, warnings: list[str]) -> list[str]:
    """Services in the trace must be in the skeleton: their structure is not guessed."""
    seen = sorted(set(trace["service"].astype(str)))
    nodes = set(base.services) | set(base.caches)
    unknown = [s for s in seen if s not in nodes]
    if unknown:
        raise TraceError(f"services {', '.join(unknown)} appear in the trace but not in the skeleton "
                         f"{path}; add them with their instances and workers")
    idle = sorted(nodes - set(seen))
    if idle:
        warnings.append(f"skeleton nodes with no traffic in the trace kept as given: {', '.join(idle)}")
    return seen


def _fit_classes(data, prov, requests, classes: ClassMap, keys, base: SystemModel, rng, warnings) -> dict[str, Fit]:
    """Request classes: share, entry, payload sizes, keys, error rate (into ``data`` and ``prov``)."""
    labels = classes.of(requests["class"])
    new_classes, payloads, key_info, error_rates = {}, {}, {}, {}
    for cname, share in classes.shares.items():
        mine = requests[(labels == cname).to_numpy()]
        entry = mine["service"].astype(str).value_counts()
        if len(entry) > 1:
            warnings.append(f"class {cname!r} enters through {', '.join(entry.index)}; using {entry.index[0]!r}")
        old = base.classes.get(cname)
        cls = {"share": share, "entry": entry.index[0]}
        if old is not None:
            cls["client"] = old.client.model_dump(by_alias=True)
        size = mine["bytes_out"].where(mine["bytes_out"].notna(), mine["bytes_in"]).dropna().to_numpy(dtype=float)
        try:
            fit = fit_distribution(size, rng=rng)
            payloads[cname] = fit
            cls["payload_bytes"] = _dist(fit)
        except TooFewSamples:
            if old is not None:
                cls["payload_bytes"] = old.payload_bytes.model_dump(by_alias=True)
        k = mine["key"].dropna().astype(str)
        if len(k) >= 100 and k.nunique() > 1:
            z = fit_zipf(k.map(keys).to_numpy(), key_space=None)
            key_info[cname] = z.to_dict()
            count = old.keys.count if old is not None and old.keys is not None else z.n_keys
            space = old.keys.space if old is not None and old.keys is not None else "keys"
            cls["keys"] = {"count": int(max(count, z.n_seen)), "zipf_exponent": round(float(z.exponent), 4),
                           "space": space}
        elif len(k):
            warnings.append(f"class {cname!r}: {len(k)} keyed requests over {k.nunique()} key(s), too few to fit a "
                            f"popularity; its keys stay as in the skeleton")
        error_rates[cname] = float(mine["error"].mean())
        new_classes[cname] = cls
    counts = {}
    for c in new_classes.values():  # classes in one key space must agree on its size
        if "keys" in c:
            counts[c["keys"]["space"]] = max(counts.get(c["keys"]["space"], 0), c["keys"]["count"])
    for c in new_classes.values():
        if "keys" in c:
            c["keys"]["count"] = counts[c["keys"]["space"]]
    total = sum(c["share"] for c in new_classes.values())
    for c in new_classes.values():  # shares from counts can miss 1 by rounding
        c["share"] = c["share"] / total
    data["classes"] = new_classes
    prov["classes"] = {c: {"share": new_classes[c]["share"], "labels": sorted(
        [lab for lab, n in classes.names.items() if n == c and lab != "*"]) or ["(all other labels)"],
        "error_rate": error_rates[c]} for c in new_classes}
    if key_info:
        prov["keys"] = key_info
    if payloads:
        prov["payload_bytes"] = {c: f.to_dict() for c, f in payloads.items()}
    worst = max(error_rates.values())
    if worst > 0.01:
        warnings.append(f"error rates up to {worst:.1%} in the trace; the twin produces errors only from timeouts, "
                        f"full queues and failures, not spontaneous ones")
    return payloads


def _prune_class_references(data, classes: set[str], measured: set[str], warnings) -> None:
    """Skeleton parts that name request classes the calibrated model no longer has."""
    for svc, spec in data["services"].items():
        if svc in measured:
            continue  # its calls and times are replaced by measured ones
        stale = [c for c in spec["service_time_s_by_class"] if c not in classes]
        for c in stale:
            del spec["service_time_s_by_class"][c]
        kept = []
        for call in spec["calls"]:
            if call["classes"] is not None:
                call["classes"] = [c for c in call["classes"] if c in classes] or None
                if call["classes"] is None:
                    stale.append(f"a call to {call['to'] or sorted(call['one_of'])}")
                    continue
            kept.append(call)
        spec["calls"] = kept
        if stale:
            warnings.append(f"{svc}: dropped skeleton parts for request classes the trace does not have: "
                            f"{', '.join(map(str, stale))}")


def _fit_services(data, prov, split: Split, classes, base: SystemModel, services: list[str], rng, warnings,
                  utilisation: dict, resolution: float) -> tuple[dict[str, ServiceFit], list[Edge]]:
    """Service times, calls and caches (into ``data`` and ``prov``)."""
    train = split.train
    requests = roots(train)
    fits: dict[str, ServiceFit] = {}
    found: list[Edge] = []
    unknown = set(utilisation) - set(services)
    if unknown:
        raise TraceError(f"--utilisation names {', '.join(sorted(unknown))}, not a service of the trace "
                         f"({', '.join(services)})")
    if train["span_id"].notna().any():
        if utilisation:
            warnings.append("utilisation series are used with latency-only traces; with spans they are not needed")
        spans = train[train["span_id"].notna()]
        request_class = request_class_of_spans(spans, classes)
        fits, more = fit_services(spans, classes, services, rng=rng, request_class=request_class)
        warnings += more
        found = edges(spans, classes, skip_callers=frozenset(base.caches), request_class=request_class)
        modes, fanouts = concurrency(spans)
        for svc in services:
            calls, more = merge_calls(svc, base.services[svc].calls, [e for e in found if e.caller == svc], fanouts)
            data["services"][svc]["calls"] = calls
            warnings += more
            if svc in modes:
                data["services"][svc]["call_mode"] = "parallel" if modes[svc] else "sequential"
        prov["routing"] = [e.to_dict() for e in found]
        _calibrate_caches(data, spans, base, prov, warnings, rng)
        warnings += capacity_warnings(spans, base)
        for svc in fits:
            mine = spans[spans["service"].astype(str) == svc]
            warnings += drift_warnings(mine["timestamp"], mine["exclusive_s"].to_numpy(), f"{svc}'s service time")
    elif train["latency_s"].notna().any():
        if len(services) != 1 or base.services[services[0]].calls:
            warnings.append("latency without spans separates queueing from service time only for a service "
                            "without downstream calls; service times of the others stay as in the skeleton")
        for svc in services:
            s = base.services[svc]
            if s.calls:
                continue
            try:
                fits[svc] = fit_from_latency(svc, requests[requests["service"].astype(str) == svc], rng=rng,
                                             utilisation=utilisation.get(svc), servers=s.instances * s.workers,
                                             resolution_s=resolution)
            except TooFewSamples as e:
                warnings.append(f"{svc}: {e.count} requests, too few to fit a service time; the skeleton's stays")
        warnings += drift_warnings(requests["timestamp"], requests["latency_s"].to_numpy(), "request latency")
    else:
        warnings.append("the trace has no latencies: service times stay as in the skeleton")
    warnings += sample_warnings({f"service {s}": f.pooled.n for s, f in fits.items()})
    for svc, f in fits.items():
        data["services"][svc]["service_time_s"] = _dist(f.pooled)
        data["services"][svc]["service_time_s_by_class"] = {c: _dist(x) for c, x in f.by_class.items()}
        if f.pooled.fallback_reason:
            warnings.append(f"{svc}: {f.pooled.fallback_reason}")
    missing = sorted(set(base.services) - set(fits) - {s for s in base.services
                                                      if base.services[s].service_time_s.mean() > 0})
    if missing:
        warnings.append(f"no service time measured for {', '.join(missing)}: 0 s from the skeleton stays")
    prov["service_times"] = {s: f.to_dict() for s, f in fits.items()}
    return fits, found


def _fit_arrivals(data, prov, requests, split: Split, trace, warnings) -> None:
    """Mean rate and burstiness of the calibration part (into ``data`` and ``prov``)."""
    t = (requests["timestamp"] - requests["timestamp"].iloc[0]).dt.total_seconds().to_numpy()
    span_s = max((split.at - trace["timestamp"].iloc[0]).total_seconds(), 1e-9)
    rate = len(requests) / span_s
    windows = [w for w in (1.0, 10.0, 60.0, 600.0) if w * 10 <= span_s]
    prov["arrivals"] = {"rate_per_s": rate, "index_of_dispersion": {f"{w:g}s": v for w, v in
                                                                   zip(windows, dispersion_curve(t, windows))}}
    data["defaults"] = {**data["defaults"], "rate_per_s": rate}
    warnings += rate_warnings(requests["timestamp"])


def _calibrate_caches(data, spans, base, prov, warnings, rng) -> None:
    """Hit time and observed hit ratio of each skeleton cache that has spans of its own."""
    out = {}
    for cname, cache in base.caches.items():
        mine = spans[spans["service"].astype(str) == cname]
        if mine.empty:
            continue
        # a miss calls the backend: its spans' parents are the missing lookups
        called = spans.loc[(spans["service"].astype(str) == cache.backend).to_numpy(), "parent_id"].dropna()
        hit = ~mine["span_id"].isin(called).to_numpy()
        out[cname] = {"lookups": int(len(mine)), "hit_ratio": float(hit.mean())}
        times = mine.loc[hit & ~mine["error"].to_numpy(dtype=bool), "latency_s"].to_numpy(dtype=float)
        if cache.serialization_method and len(times):
            cost = data["serialization"][cache.serialization_method]
            size = mine.loc[hit, "bytes_out"].fillna(0).to_numpy(dtype=float)
            times = np.maximum(times - cost["per_op_s"] - cost["decode_s_per_byte"] * size, 0.0)
        try:
            fit = fit_distribution(times, rng=rng)
        except TooFewSamples:
            warnings.append(f"cache {cname}: too few hits to fit a hit time; kept the skeleton's")
            continue
        data["caches"][cname]["hit_time_s"] = _dist(fit)
        out[cname]["hit_time"] = fit.to_dict()
    if out:
        prov["caches"] = out


def assess(cal: Calibration, *, replications: int = 5, seed: int = 0, thresholds: Thresholds = Thresholds(),
           jobs: int = 1, progress=None, warmup_s: float | None = None) -> tuple[Fidelity, list]:
    """Replay the held-out requests through the calibrated twin and compare (see ``fidelity``).

    The replay starts ``warmup_s`` before the split, replaying the end of the calibration part
    unmeasured, so that the twin's queues and caches are as full as the real system's when the
    held-out part begins.  With spans, requests arrive at the twin when their entry span began,
    and the twin is timed by its own entry spans: the queue in front of the entry is in no span.  Default: a quarter of the held-out span, at least 120 s (caches fill
    slowly), at most the whole calibration part.
    """
    test = roots(cal.split.test)
    end = cal.trace["timestamp"].iloc[-1]
    held_s = (end - cal.split.at).total_seconds()
    train_s = (cal.split.at - cal.trace["timestamp"].iloc[0]).total_seconds()
    if warmup_s is None:
        warmup_s = max(120.0, 0.25 * held_s)
    warm = pd.Timedelta(seconds=min(warmup_s, train_s))
    start = cal.split.at - warm
    replay = roots(cal.trace[(cal.trace["timestamp"] >= start) & (cal.trace["timestamp"] <= end)])
    unseen = int(cal.classes.of(test["class"]).isna().sum())
    test = test[cal.classes.of(test["class"]).notna().to_numpy()]
    workload = arrival_table(replay, cal.model, cal.classes, cal.keys, start=start, end=end,
                             jitter_s=cal.resolution_s, rng=np.random.default_rng(seed))
    # a span trace times requests from the entry's handler start, so the twin is timed alike
    handler = bool(cal.trace["span_id"].notna().any())
    results = run_replications(cal.model, workload, replications=replications, seed=seed, jobs=jobs,
                               warmup_s=warm.total_seconds(), progress=progress, record_spans=handler)
    util, hits = observed_load(cal, cal.split.at, end)
    fid = compare(test, cal.classes.of(test["class"]), twin_latencies(results, handler=handler), results,
                  thresholds=thresholds, window_s=held_s, utilisation=util, hit_ratio=hits, left_out=unseen)
    return fid, results


def observed_load(cal: Calibration, start: pd.Timestamp, end: pd.Timestamp) -> tuple[dict, dict]:
    """Utilisation per service and hit ratio per cache that the spans show in [start, end).

    A service's workers are busy for a whole span when calls hold the worker, else for the
    span's exclusive time; capacity is instances x workers from the skeleton.
    """
    spans = cal.trace[cal.trace["span_id"].notna()]
    if spans.empty:
        return {}, {}
    window = (end - start).total_seconds()
    t0 = (spans["timestamp"] - start).dt.total_seconds().to_numpy()
    util = {}
    for name, svc in cal.model.services.items():
        mine = (spans["service"].astype(str) == name).to_numpy()
        if not mine.any():
            continue
        held = spans["latency_s"] if svc.calls_hold_worker else spans["exclusive_s"]
        a = t0[mine]
        b = a + held.to_numpy(dtype=float)[mine]
        busy = np.clip(np.minimum(b, window) - np.maximum(a, 0.0), 0.0, None).sum()
        util[name] = float(busy / (svc.instances * svc.workers * window))
    hits = {}
    for name, cache in cal.model.caches.items():
        mine = spans[(spans["service"].astype(str) == name).to_numpy() & (t0 >= 0) & (t0 < window)]
        if len(mine):
            called = spans.loc[(spans["service"].astype(str) == cache.backend).to_numpy(), "parent_id"].dropna()
            hits[name] = float((~mine["span_id"].isin(called)).mean())
    return util, hits
