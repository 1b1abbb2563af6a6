"""Values at the edges: degenerate laws, booleans for numbers, sizes that would exhaust memory."""

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from twin.spec import Distribution, SpecError, validate_model
from twin.spec.experiment import Sweep


def _model(services):
    return validate_model({"name": "t", "classes": {"get": {"share": 1, "entry": "api"}}, "services": services},
                          source="m.yaml")


@pytest.mark.parametrize("dist,where,expected", [
    ({"dist": "gamma", "mean": 1, "cv": 1e-300}, "service_time_s.cv", "at least 1e-06"),
    ({"dist": "gamma", "mean": 1, "cv": 50}, "service_time_s.cv", "at most 10 for a gamma law"),
    ({"dist": "lognormal", "mean": 1e-300, "cv": 100}, "service_time_s.mean", ">= 1e-100"),
    ({"dist": "exponential", "mean": 1e-320}, "service_time_s.mean", ">= 1e-100"),
    ({"dist": "weibull", "shape": 0.05, "scale": 1e-300}, "service_time_s.scale", ">= 1e-100"),
    ({"dist": "deterministic", "value": 1e-320}, "service_time_s.value", "0 or at least 1e-100"),
])
def test_degenerate_distributions_are_refused_naming_the_field(dist, where, expected):
    # each of these once died in a ZeroDivisionError or drew only zeros
    with pytest.raises(SpecError) as e:
        _model({"api": {"service_time_s": dist}})
    assert str(e.value).startswith(f"m.yaml: services.api.{where}: ") and expected in str(e.value)


def test_a_truncated_pareto_with_a_tiny_alpha_draws_its_own_mean():
    # alpha -> 0 on [1, 1000] is log-uniform (mean 999 / ln 1000); the draws once all came out as 1
    d = TypeAdapter(Distribution).validate_python({"dist": "pareto", "scale": 1, "alpha": 1e-300, "high": 1000})
    assert d.mean() == pytest.approx(999 / np.log(1000))
    x = d.sample(np.random.default_rng(1), 200_000)
    assert x.mean() == pytest.approx(d.mean(), rel=0.02) and x.max() <= 1000


@pytest.mark.parametrize("field", ["instances", "workers", "queue_capacity"])
def test_booleans_are_not_counts(field):
    with pytest.raises(SpecError, match=f"services.api.{field}: expected a number, got true"):
        _model({"api": {field: True, "service_time_s": 0.01}})


@pytest.mark.parametrize("field", ["workers", "trials", "replications"])
def test_booleans_are_not_counts_in_an_experiment(field):
    with pytest.raises(ValidationError, match="expected a number, got true"):
        Sweep.model_validate({field: True})


@pytest.mark.parametrize("services,expected", [
    ({"api": {"instances": 10**9, "service_time_s": 1}}, "services.api.instances: expected a number <= 10000"),
    ({"api": {"workers": 10**9, "service_time_s": 1}}, "services.api.workers: expected a number <= 1e+06"),
    ({"api": {"service_time_s": 1, "calls": [{"to": "db", "count": 10**6}]}, "db": {"service_time_s": 1}},
     "services.api.calls.0.count: expected a number <= 1000"),
    ({"api": {"service_time_s": 1, "calls": [{"to": "b", "count": 1000}]},
      "b": {"service_time_s": 1, "calls": [{"to": "db", "count": 1000}]}, "db": {"service_time_s": 1}},
     "services.db: a request of class 'get' would make 1e+06 visits on average"),
])
def test_sizes_that_would_exhaust_memory_are_refused(services, expected):
    with pytest.raises(SpecError) as e:
        _model(services)
    assert expected in str(e.value)
