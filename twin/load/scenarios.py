"""Edge cases: documented, composable transformations of the load or of the model.

Declared in an experiment config (or a YAML file given to ``twin synth --scenario``) as a list::

    scenarios:
      - {kind: flash_crowd, at: 30min, factor: 5, rise: 10s, hold: 5min, fall: 1min, classes: [browse]}
      - {kind: ramp, start: 1h, end: 2h, factor: 2}
      - {kind: large_uploads, share: 0.05, factor: 20, classes: [checkout]}
      - {kind: heavy_queries, to: search, share: 0.3, start: 1h, end: 90min}
      - {kind: retry_storm, timeout: 500ms, retries: 3, classes: [checkout]}
      - {kind: slow_dependency, service: payments, factor: 4, start: 20min, end: 25min}
      - {kind: instance_failure, service: search, mean_time_to_failure: 5min, recovery_rate: 0.02, end: 1h}

Each kind is an ``EdgeCase`` (the one base class of this extension point).  Load edits act on the
arrival table, in the order listed; model edits change the system model the twin runs, and two
that set the same part of the model conflict (an error names both).  Two class-mix shifts whose
windows overlap conflict too.  Rates of the load as it stands are estimated per minute from its
own arrivals, so an edit scales the load that is there, whatever made it.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ..sim.workload import MAX_ARRIVALS, Workload, fill_request_data
from ..spec import Problem, SpecError, SystemModel
from ..spec.loader import validate_model
from ..spec.model import Name, NonNegSeconds, Seconds
from .arrivals import nhpp

Factor = Annotated[float, Field(gt=0, le=1e4, allow_inf_nan=False)]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
BIN_S = 60.0  # the rate of the load as it stands is estimated per minute


class EdgeCase(BaseModel):
    """A transformation of the load (``on_load``) or of the model (``model_edits``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: what the edit acts on, for the summary
    acts_on: ClassVar[str] = "load"

    def model_edits(self, model: SystemModel) -> dict[str, object]:
        """Dotted paths of the model and their new values (a model edit); none by default."""
        return {}

    def on_load(self, w: Workload, model: SystemModel, rng: np.random.Generator) -> Workload:
        """The arrival table after this edit (a load edit); unchanged by default."""
        return w

    def window(self) -> tuple[float, float]:
        return (0.0, math.inf)

    @model_validator(mode="after")
    def _end_after_start(self):
        start, end = getattr(self, "start", None), getattr(self, "end", None)
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end: expected an end after the start ({start:g} s), got {end:g} s")
        return self


# -- load edits --------------------------------------------------------------------------------

def _rate_curve(w: Workload) -> tuple[np.ndarray, np.ndarray]:
    """Knots (times, rates per s) of the load as it stands: per-minute counts at bin centres."""
    n_bins = max(1, int(math.ceil(w.duration_s / BIN_S)))
    counts = np.bincount(np.minimum((w.time_s // BIN_S).astype(np.int64), n_bins - 1), minlength=n_bins)
    widths = np.minimum(BIN_S, w.duration_s - BIN_S * np.arange(n_bins))
    rates = counts / np.maximum(widths, 1e-9)
    centres = BIN_S * np.arange(n_bins) + widths / 2
    return np.r_[0.0, centres, w.duration_s], np.r_[rates[0], rates, rates[-1]]


def _classes(model: SystemModel, classes: list[str] | None, where: str) -> np.ndarray:
    """Probabilities over the model's classes: ``classes`` by their shares, or all of them."""
    if classes:
        unknown = [c for c in classes if c not in model.classes]
        if unknown:
            raise SpecError([Problem(f"{where}.classes", f"unknown class(es) {', '.join(unknown)}; the model has "
                                                          f"{', '.join(model.classes)}")])
    p = np.array([c.share if (not classes or n in classes) else 0.0 for n, c in model.classes.items()])
    return p / p.sum()


def _add(w: Workload, model: SystemModel, knots_t, knots_r, probs, rng, where: str) -> Workload:
    """``w`` with the arrivals of an extra Poisson process of rate linear between the knots."""
    knots_t, knots_r = np.asarray(knots_t, float), np.asarray(knots_r, float)
    extra = float(np.sum((knots_r[1:] + knots_r[:-1]) / 2 * np.diff(knots_t)))
    if len(w) + extra > MAX_ARRIVALS:
        raise SpecError([Problem(where, f"expected a load of at most {MAX_ARRIVALS:.0e} arrivals with this edge "
                                        f"case, got {len(w)} + {extra:.3g} more")])
    times_rng, class_rng, data_rng = rng.spawn(3)
    t = nhpp(knots_t, np.maximum(knots_r, 0.0), times_rng)
    t = t[t < w.duration_s]
    codes = class_rng.choice(len(probs), size=len(t), p=probs).astype(np.int16)
    size, key = fill_request_data(model, codes, data_rng)
    order = np.argsort(np.r_[w.time_s, t], kind="stable")
    cat = lambda a, b: np.r_[a, b][order]  # noqa: E731
    return Workload(cat(w.time_s, t), cat(w.cls, codes).astype(np.int16), cat(w.size_bytes, size),
                    cat(w.key, key), cat(w.session, np.full(len(t), -1, np.int64)), w.class_names, w.duration_s)


def _keep(w: Workload, mask: np.ndarray) -> Workload:
    return Workload(w.time_s[mask], w.cls[mask], w.size_bytes[mask], w.key[mask], w.session[mask], w.class_names,
                    w.duration_s)


class FlashCrowd(EdgeCase):
    """From ``at``, the load climbs to ``factor`` times what it was within ``rise``, holds for
    ``hold``, and falls back over ``fall``; the extra requests are of ``classes`` (default all,
    by the model's shares)."""

    kind: Literal["flash_crowd"]
    at: NonNegSeconds
    factor: Annotated[float, Field(gt=1, le=1e4, allow_inf_nan=False)]
    rise: Seconds = 10.0
    hold: Seconds = 300.0
    fall: Seconds = 60.0
    classes: list[Name] | None = None

    def window(self):
        return (self.at, self.at + self.rise + self.hold + self.fall)

    def on_load(self, w, model, rng):
        base_t, base_r = _rate_curve(w)
        a, b, c, d = self.at, self.at + self.rise, self.at + self.rise + self.hold, self.window()[1]
        t = np.unique(np.r_[base_t, a, b, c, d].clip(0, w.duration_s))
        shape = np.interp(t, [a, b, c, d], [0.0, 1.0, 1.0, 0.0], left=0.0, right=0.0)
        extra = (self.factor - 1) * np.interp(t, base_t, base_r) * shape
        return _add(w, model, t, extra, _classes(model, self.classes, self.kind), rng, f"{self.kind}.factor")


class Ramp(EdgeCase):
    """The load is multiplied by a factor that goes linearly from 1 at ``start`` to ``factor`` at
    ``end`` and stays there (below 1: the load thins out)."""

    kind: Literal["ramp"]
    start: NonNegSeconds
    end: Seconds
    factor: Factor

    def window(self):
        return (self.start, math.inf)

    def on_load(self, w, model, rng):
        multiplier = lambda t: np.interp(t, [self.start, self.end], [1.0, self.factor])  # noqa: E731
        if self.factor >= 1:
            base_t, base_r = _rate_curve(w)
            t = np.unique(np.r_[base_t, self.start, self.end].clip(0, w.duration_s))
            extra = (multiplier(t) - 1) * np.interp(t, base_t, base_r)
            return _add(w, model, t, extra, _classes(model, None, self.kind), rng, f"{self.kind}.factor")
        return _keep(w, rng.random(len(w)) < multiplier(w.time_s))


class LargeUploads(EdgeCase):
    """A ``share`` of the requests of ``classes`` (default all) in [``start``, ``end``) carry
    payloads ``factor`` times larger: the tail of the size distribution, multiplied."""

    kind: Literal["large_uploads"]
    share: Share
    factor: Annotated[float, Field(gt=1, le=1e6, allow_inf_nan=False)]
    classes: list[Name] | None = None
    start: NonNegSeconds = 0.0
    end: Seconds | None = None

    def window(self):
        return (self.start, self.end if self.end is not None else math.inf)

    def on_load(self, w, model, rng):
        probs = _classes(model, self.classes, self.kind)
        lo, hi = self.window()
        hit = (probs[w.cls] > 0) & (w.time_s >= lo) & (w.time_s < hi) & (rng.random(len(w)) < self.share)
        size = w.size_bytes.copy()
        size[hit] = np.rint(size[hit] * self.factor).astype(np.int64)
        return Workload(w.time_s, w.cls, size, w.key, w.session, w.class_names, w.duration_s)


class HeavyQueries(EdgeCase):
    """In [``start``, ``end``), a ``share`` of the requests of other classes become ``to`` requests
    (an expensive query class): the mix shifts, the volume does not.  Their sizes and keys are
    drawn anew as ``to`` has them."""

    kind: Literal["heavy_queries"]
    to: Name
    share: Share
    start: NonNegSeconds = 0.0
    end: Seconds | None = None

    def window(self):
        return (self.start, self.end if self.end is not None else math.inf)

    def on_load(self, w, model, rng):
        if self.to not in w.class_names:
            raise SpecError([Problem("heavy_queries.to", f"unknown class {self.to!r}; the model has "
                                                          f"{', '.join(w.class_names)}")])
        code = w.class_names.index(self.to)
        lo, hi = self.window()
        hit = (w.cls != code) & (w.time_s >= lo) & (w.time_s < hi) & (rng.random(len(w)) < self.share)
        cls, size, key = w.cls.copy(), w.size_bytes.copy(), w.key.copy()
        cls[hit] = code
        size[hit], key[hit] = fill_request_data(model, cls[hit], rng)
        return Workload(w.time_s, cls, size, key, w.session, w.class_names, w.duration_s)


# -- model edits -------------------------------------------------------------------------------

class RetryStorm(EdgeCase):
    """The clients of ``classes`` (default all) give up after ``timeout`` and retry ``retries``
    times with their backoff: when the system slows, retries add load and slow it further."""

    acts_on: ClassVar[str] = "model"
    kind: Literal["retry_storm"]
    timeout: Seconds
    retries: Annotated[int, Field(ge=1, le=20)] = 3
    backoff_initial: NonNegSeconds = 0.1
    backoff_multiplier: Annotated[float, Field(ge=1, le=100)] = 2.0
    classes: list[Name] | None = None

    def model_edits(self, model):
        _classes(model, self.classes, self.kind)
        return {f"classes.{c}.client": {"timeout_s": self.timeout, "retries": self.retries,
                                        "backoff": {"initial_s": self.backoff_initial,
                                                    "multiplier": self.backoff_multiplier}}
                for c in (self.classes or model.classes)}


def _scaled(dist: dict, factor: float) -> dict:
    """A distribution (as dumped) with every time-valued parameter multiplied by ``factor``."""
    out = dict(dist)
    for field in ("mean", "value", "low", "high", "scale"):
        if field in out:
            out[field] = out[field] * factor
    if "values" in out:
        out["values"] = [v * factor for v in out["values"]]
    return out


class SlowDependency(EdgeCase):
    """Every service time of ``service`` is ``factor`` times longer (a dependency degraded); with
    ``start`` or ``end``, only for visits that start in that window (``services.<s>.slowdowns``)."""

    acts_on: ClassVar[str] = "model"
    kind: Literal["slow_dependency"]
    service: Name
    factor: Annotated[float, Field(gt=1, le=1e4, allow_inf_nan=False)]
    start: NonNegSeconds | None = None
    end: Seconds | None = None

    def window(self):
        return (self.start or 0.0, self.end if self.end is not None else math.inf)

    def model_edits(self, model):
        svc = _service(model, self.service, self.kind)
        if self.start is not None or self.end is not None:
            return {f"services.{self.service}.slowdowns": [
                {"start_s": self.start or 0.0, "end_s": self.end, "factor": self.factor}]}
        dump = svc.model_dump(by_alias=True)
        edits = {f"services.{self.service}.service_time_s": _scaled(_as_dist(dump["service_time_s"]), self.factor)}
        for c, d in dump.get("service_time_s_by_class", {}).items():
            edits[f"services.{self.service}.service_time_s_by_class.{c}"] = _scaled(_as_dist(d), self.factor)
        return edits


def _as_dist(d):
    return d if isinstance(d, dict) else {"dist": "deterministic", "value": d}


class InstanceFailure(EdgeCase):
    """Each instance of ``service`` fails after an exponential uptime of mean
    ``mean_time_to_failure`` and comes back at ``recovery_rate`` per second; with ``start`` or
    ``end``, failures begin only in that window (a recovery under way at its end completes)."""

    acts_on: ClassVar[str] = "model"
    kind: Literal["instance_failure"]
    service: Name
    mean_time_to_failure: Seconds
    recovery_rate: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]
    start: NonNegSeconds = 0.0
    end: Seconds | None = None

    def window(self):
        return (self.start, self.end if self.end is not None else math.inf)

    def model_edits(self, model):
        _service(model, self.service, self.kind)
        return {f"services.{self.service}.failures": {
            "time_to_failure_s": {"dist": "exponential", "mean": self.mean_time_to_failure},
            "recovery_rate_per_s": self.recovery_rate, "recovery_time": "exponential",
            "start_s": self.start, "end_s": self.end}}


def _service(model: SystemModel, name: str, where: str):
    if name not in model.services:
        raise SpecError([Problem(f"{where}.service", f"unknown service {name!r}; the model has "
                                                      f"{', '.join(model.services)}")])
    return model.services[name]


KINDS = (FlashCrowd, Ramp, LargeUploads, HeavyQueries, RetryStorm, SlowDependency, InstanceFailure)
AnyEdgeCase = Annotated[Union[KINDS], Field(discriminator="kind")]
_LIST = TypeAdapter(list[AnyEdgeCase])


def _kind_names() -> list[str]:
    return [k.model_fields["kind"].annotation.__args__[0] for k in KINDS]


def parse(data, *, source: str = "scenarios") -> list[EdgeCase]:
    """Edge cases from plain data (a list of mappings with a ``kind``), or a ``SpecError`` that
    names the entry, the field and what was expected.

    >>> [c.kind for c in parse([{"kind": "ramp", "start": "1h", "end": "2h", "factor": 2}])]
    ['ramp']
    >>> parse([{"kind": "ramp", "start": 0, "end": 60, "factr": 2}])
    Traceback (most recent call last):
    twin.spec.errors.SpecError: scenarios: scenarios[0].factor: field required
    scenarios: scenarios[0].factr: unknown field
    """
    if not isinstance(data, list):
        raise SpecError([Problem("scenarios", f"expected a list of edge cases, got {type(data).__name__}", source)])
    for i, item in enumerate(data):
        if not isinstance(item, dict) or item.get("kind") not in _kind_names():
            got = item.get("kind") if isinstance(item, dict) else item
            raise SpecError([Problem(f"scenarios[{i}].kind", f"expected one of {', '.join(_kind_names())}, got "
                                                              f"{got!r}", source)])
    try:
        return _LIST.validate_python(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            index, _kind, *fields = err["loc"]
            where = f"scenarios[{index}]" + "".join(f".{f}" for f in fields)
            message = {"extra_forbidden": "unknown field", "missing": "field required"}.get(err["type"], err["msg"])
            if err["type"] == "value_error":  # a check across fields names its field first
                field, _, message = err["msg"].removeprefix("Value error, ").partition(": ")
                where += f".{field}"
            problems.append(Problem(where, message, source))
        raise SpecError(problems) from None


def apply(cases: list[EdgeCase], model: SystemModel, w: Workload | None, rng: np.random.Generator):
    """(model, workload) after every edge case: model edits first (checked for conflicts and
    validated as a model), then load edits in order, each with its own random stream."""
    edits: dict[str, tuple[int, object]] = {}
    for i, case in enumerate(cases):
        for path, value in case.model_edits(model).items():
            if path in edits:
                j = edits[path][0]
                raise SpecError([Problem(f"scenarios[{i}]", f"{case.kind} sets {path}, which scenarios[{j}] "
                                                             f"({cases[j].kind}) also sets; keep one")])
            edits[path] = (i, value)
    shifts = [(i, c) for i, c in enumerate(cases) if isinstance(c, HeavyQueries)]
    for a in range(len(shifts)):
        for b in range(a + 1, len(shifts)):
            (i, x), (j, y) = shifts[a], shifts[b]
            (x0, x1), (y0, y1) = x.window(), y.window()
            if x.to != y.to and x0 < y1 and y0 < x1:
                raise SpecError([Problem(f"scenarios[{j}]", f"shifts the mix to {y.to} while scenarios[{i}] shifts "
                                                             f"it to {x.to} in an overlapping window; keep one")])
    if edits:
        from ..spec.loader import set_path

        data = model.model_dump(by_alias=True)
        for path, (_, value) in edits.items():
            data = set_path(data, path, value, source="scenarios")
        model = validate_model(data, source="scenarios")
    if w is not None:
        streams = rng.spawn(len(cases))
        for case, stream in zip(cases, streams):
            w = case.on_load(w, model, stream)
    return model, w


__all__ = ["EdgeCase", "FlashCrowd", "HeavyQueries", "InstanceFailure", "KINDS", "LargeUploads", "Ramp",
           "RetryStorm", "SlowDependency", "apply", "parse"]
