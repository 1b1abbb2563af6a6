"""The loader: valid models load, every kind of bad input is one clear line with file, line and path."""

import pytest

from tests.conftest import MINIMAL, MODELS
from twin.spec import SpecError, TwinError, load_model


def problems(path, **kw):
    with pytest.raises(SpecError) as info:
        load_model(path, **kw)
    return [str(p) for p in info.value.problems]


def test_every_bundled_model_loads():
    from twin.calibrate.skeleton import load_skeleton

    files = sorted(MODELS.rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        model = load_skeleton(path).model if path.name.endswith(".skeleton.yaml") else load_model(path)
        assert model.services


def test_minimal_model_defaults(write_yaml):
    m = load_model(write_yaml(MINIMAL))
    api = m.services["api"]
    assert api.instances == 1 and api.queue_capacity is None and api.calls_hold_worker
    assert m.classes["get"].payload_bytes.mean() == 0
    assert m.defaults.warmup_s < m.defaults.duration_s


def test_model_is_frozen(write_yaml):
    m = load_model(write_yaml(MINIMAL))
    with pytest.raises(Exception):
        m.services["api"].workers = 9


@pytest.mark.parametrize("edit,where,expected", [
    # unknown field, with a suggestion
    ("    worker: 3\n", ":8: services.api.worker", "unknown field 'worker' (did you mean 'workers'?)"),
    # wrong type
    ("    instances: many\n", ":8: services.api.instances", "expected an integer, got 'many'"),
    # unknown distribution
    ("    service_time_s: {dist: cauchy, mean: 1}\n", "services.api.service_time_s.dist",
     "unknown distribution 'cauchy'"),
    # a power law whose mean is infinite
    ("    service_time_s: {dist: pareto, scale: 0.01, alpha: 0.9}\n", "services.api.service_time_s",
     "expected alpha > 1 (a finite mean) or a cut-off 'high'; got alpha=0.9"),
])
def test_bad_service_fields(write_yaml, edit, where, expected):
    text = MINIMAL.replace("    workers: 2\n    service_time_s: {dist: exponential, mean: 0.01}\n",
                           "    workers: 2\n    service_time_s: {dist: exponential, mean: 0.01}\n" + edit)
    if "service_time_s" in edit:
        text = text.replace("    service_time_s: {dist: exponential, mean: 0.01}\n", "", 1)
    path = write_yaml(text)
    [line] = problems(path)
    assert line.startswith(str(path))
    assert where in line and expected in line


def test_pareto_moments_with_and_without_a_cut_off():
    import numpy as np

    from twin.spec.distributions import Pareto

    rng = np.random.default_rng(0)
    for d in (Pareto(dist="pareto", scale=1000, alpha=2.5), Pareto(dist="pareto", scale=1000, alpha=0.8, high=1e6),
              Pareto(dist="pareto", scale=1000, alpha=2.0, high=1e5)):
        x = d.sample(rng, 400_000)
        assert x.min() >= 1000 and (d.high is None or x.max() <= d.high)
        assert abs(x.mean() / d.mean() - 1) < 0.03, d
    heavy = Pareto(dist="pareto", scale=1.0, alpha=1.5)
    assert heavy.mean() == 3.0 and heavy.second_moment() == float("inf")  # a finite mean, an infinite variance


def test_negative_rate(write_yaml):
    [line] = problems(write_yaml(MINIMAL + "defaults:\n  rate_per_s: -5\n"))
    assert ":9: defaults.rate_per_s: expected a number > 0, got -5" in line


def test_empty_class_mix(write_yaml):
    text = MINIMAL.replace("classes:\n  get: {share: 1.0, entry: api}\n", "classes: {}\n")
    [line] = problems(write_yaml(text))
    assert "classes: expected at least 1 entry" in line


def test_shares_must_sum_to_one(write_yaml):
    text = MINIMAL.replace("get: {share: 1.0, entry: api}", "get: {share: 0.6, entry: api}\n  put: {share: 0.3, entry: api}")
    [line] = problems(write_yaml(text))
    assert "classes: expected class shares summing to 1, got 0.9" in line


def test_call_cycle_without_exit(write_yaml):
    text = MINIMAL + """\
    calls: [{to: db}]
  db:
    service_time_s: 0.001
    calls: [{to: api, probability: 1.0}]
"""
    [line] = problems(write_yaml(text))
    assert "the call cycle api -> db -> api has no way out" in line


def test_call_cycle_with_exit_is_fine(write_yaml):
    text = MINIMAL + """\
    calls: [{to: db}]
  db:
    service_time_s: 0.001
    calls: [{to: api, probability: 0.3}]
"""
    assert load_model(write_yaml(text)).services["db"].calls[0].probability == 0.3


def test_fan_out_that_never_ends(write_yaml):
    text = MINIMAL + """\
    calls: [{to: api, probability: 0.6, count: 2}]
"""
    [line] = problems(write_yaml(text))
    assert "api -> api has no way out" in line


def test_unknown_call_target_and_class(write_yaml):
    text = MINIMAL + "    calls: [{to: dbb, classes: [gett]}]\n"
    lines = problems(write_yaml(text))
    assert any("services.api.calls.0.to: unknown service or cache 'dbb' (known: api)" in x for x in lines)
    assert any("unknown request class 'gett'" in x for x in lines)


def test_duplicate_key(write_yaml):
    [line] = problems(write_yaml(MINIMAL + "    workers: 4\n"))
    assert ":8: services.api.workers: duplicate key (first on line 6)" in line


def test_not_yaml(write_yaml):
    with pytest.raises(TwinError, match=r"model.yaml:2: not valid YAML"):
        load_model(write_yaml("name: x\n  bad: [unclosed\n"))


def test_empty_and_missing_files(write_yaml, tmp_path):
    [line] = problems(write_yaml(""))
    assert "expected a mapping with name, classes and services, got an empty document" in line
    with pytest.raises(TwinError, match="no such file"):
        load_model(tmp_path / "nope.yaml")


def test_every_problem_is_reported(write_yaml):
    text = MINIMAL.replace("workers: 2", "workers: -2\n    queue_capacity: lots")
    lines = problems(write_yaml(text))
    assert len(lines) == 2 and all("\n" not in x for x in lines)


# -- overrides ------------------------------------------------------------------------------

def test_set_any_field(write_yaml):
    m = load_model(write_yaml(MINIMAL), sets=["services.api.workers=8", "services.api.queue_capacity=50",
                                              "services.api.service_time_s={dist: deterministic, value: 0.02}"])
    api = m.services["api"]
    assert api.workers == 8 and api.queue_capacity == 50 and api.service_time_s.mean() == 0.02


def test_set_is_validated_like_the_file(write_yaml):
    [line] = problems(write_yaml(MINIMAL), sets=["services.api.workers=0"])
    assert line == "--set: services.api.workers: expected a number >= 1, got 0"
    [line] = problems(write_yaml(MINIMAL), sets=["services.apx.workers=3"])
    assert "--set: services: has no entry 'apx' (did you mean 'api'?)" in line
    [line] = problems(write_yaml(MINIMAL), sets=["services.api.wrkers=3"])
    assert "did you mean 'workers'" in line
    [line] = problems(write_yaml(MINIMAL), sets=["nonsense"])
    assert "expected PATH=VALUE" in line


def test_set_through_unset_block(write_yaml):
    [line] = problems(write_yaml(MINIMAL), sets=["services.api.failures.recovery_rate_per_s=0.1"])
    assert "services.api.failures: is not set; set the whole block" in line


def test_set_adds_an_entry_to_a_named_map(write_yaml):
    text = MINIMAL + "    calls: [{to: db}]\n  db:\n    service_time_s: 0.001\n"
    m = load_model(write_yaml(text), sets=["network.links.api->db=0.002"])
    assert m.network.links["api->db"].value == 0.002
    [line] = problems(write_yaml(text), sets=["network.links.api->dbb=0.002"])
    assert "network.links.api->dbb: unknown service or cache 'dbb'" in line


def test_bad_names_are_explained(write_yaml):
    [line] = problems(write_yaml(MINIMAL.replace("  get:", "  gét:")))
    assert "classes.gét: expected a name of ASCII letters" in line
