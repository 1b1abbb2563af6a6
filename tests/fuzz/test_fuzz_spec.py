"""Fuzzing the model language: units, model documents, model files, overrides, experiments, edge cases."""

import math

import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import MODELS, ROOT
from tests.fuzz.support import UNIT_WORDS, clean, fuzz, mutated, text_mutated, values
from twin.spec import SystemModel, load_model
from twin.spec.loader import apply_overrides, apply_params, parse_assignments, validate_model
from twin.spec.units import parse_bytes, parse_seconds

SHOP_TEXT = (MODELS / "reference" / "shop.yaml").read_text()
SHOP_DOC = yaml.safe_load(SHOP_TEXT)
SHOP = load_model(MODELS / "reference" / "shop.yaml")
EXPERIMENT_DOC = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
UNITS = ["", "b", "kb", "MiB", "gib", "K", "t", "s", "ms", "us", "µs", "ns", "min", "h", "d", "x", "mss", "e"]

quantity = st.builds(
    lambda sign, whole, frac, exp, space, unit: f"{sign}{whole}{frac}{exp}{space}{unit}",
    st.sampled_from(["", "-", "+", "--"]), st.sampled_from(["", "0", "1", "12", "1" * 40, "١"]),
    st.sampled_from(["", ".", ".5", ".000001"]), st.sampled_from(["", "e3", "E-2", "e400", "e-400", "e"]),
    st.sampled_from(["", " ", "\t", "\n"]), st.sampled_from(UNITS))


@fuzz(2000)
@given(st.one_of(quantity, st.sampled_from(UNIT_WORDS), st.text(max_size=10), values))
def test_units(text):
    for parse in (parse_bytes, parse_seconds):
        try:
            value = parse(text)
        except ValueError as e:
            assert str(e) and "\n" not in str(e)
            continue
        if isinstance(text, str):
            assert isinstance(value, (int, float)) and not math.isnan(value)
            if parse is parse_bytes:
                assert isinstance(value, int)


@fuzz(1500)
@given(mutated(SHOP_DOC))
def test_model_documents(doc):
    model = clean(validate_model, doc, source="shop.yaml")
    assert model is None or isinstance(model, SystemModel)


@fuzz(400)
@given(text_mutated(SHOP_TEXT))
def test_model_files(scratch, text):
    path = scratch / "model.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(load_model, path)


SET_VALID = {"services.frontend.workers": ["16", "1", "0", "-3", "2.5", "many"],
             "services.frontend.instances": ["2", "0", "1e9"], "classes.browse.share": ["0.5", "1.5", "-0.1"],
             "caches.product_cache.capacity_bytes": ["512MiB", "1e400", "-1", "1.5KiB"],
             "services.frontend.calls.0.to": ["orders", "nosuch", "frontend"],
             "services.frontend.calls[0].retries": ["2", "-1"], "services.nosuch.workers": ["2"],
             "services": ["{}", "[]"], "name": ["shop2", "", "[1]"],
             "services.frontend.service_time_s": ["{dist: exponential, mean: 0.01}", "{dist: gamma, mean: 1, cv: 0}",
                                                  "0.003", "{dist: empirical, samples: []}"],
             "services.frontend.calls.9": ["{to: orders}"], "classes.newclass": ["{share: 0.1, entry: frontend}"],
             "services.frontend.workers.x": ["1"], "": ["1"], "a..b": ["1"]}
set_values = st.one_of(values.map(lambda v: yaml.safe_dump(v).removesuffix("\n...\n").strip()),
                       text_mutated("{dist: exponential, mean: 0.01}"))
set_items = st.sampled_from(sorted(SET_VALID)).flatmap(
    lambda p: st.builds(lambda v: f"{p}={v}", st.one_of(st.sampled_from(SET_VALID[p][:1]),
                                                        st.sampled_from(SET_VALID[p]), set_values)))


@fuzz(400)
@given(st.lists(st.one_of(set_items, set_items, st.text(max_size=12)), min_size=1, max_size=2))
def test_set_overrides(sets):
    clean(apply_overrides, SHOP, sets)


def _domain_values(t) -> list[str]:
    if t.type == "categorical":
        return [str(c) for c in t.choices]
    return [f"{t.low:g}", f"{t.high:g}", f"{(t.low + t.high) / 2:g}", f"{t.high * 2:g}"]


param_items = st.sampled_from(sorted(SHOP.tunables)).flatmap(lambda n: st.builds(
    lambda v: f"{n}={v}", st.one_of(st.sampled_from(_domain_values(SHOP.tunables[n])), st.sampled_from(UNIT_WORDS),
                                    quantity)))


@fuzz(600)
@given(st.lists(st.one_of(param_items, param_items, st.builds(lambda n, v: f"{n}={v}", st.text(max_size=6),
                                                               st.text(max_size=6)), st.text(max_size=8)),
                min_size=1, max_size=2))
def test_param_overrides(items):
    params = clean(parse_assignments, items, source="--param")
    if params is not None:
        clean(apply_params, SHOP, params)


@fuzz(300)
@given(st.one_of(mutated(EXPERIMENT_DOC).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                 text_mutated(yaml.safe_dump(EXPERIMENT_DOC))))
def test_experiments(scratch, text):
    from twin.pipeline import load_experiment

    path = scratch / "experiment.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(load_experiment, path)


EDGE_CASES = [
    {"kind": "flash_crowd", "at": "600s", "factor": 5, "rise": "10s", "hold": "120s", "fall": "1min"},
    {"kind": "ramp", "start": "300s", "end": "900s", "factor": 3},
    {"kind": "large_uploads", "share": 0.1, "factor": 50, "classes": ["checkout"]},
    {"kind": "heavy_queries", "start": "1h", "end": "2h", "classes": {"search": 0.5}},
    {"kind": "retry_storm", "timeout": "2s", "retries": 3},
    {"kind": "slow_dependency", "service": "orders", "factor": 3, "start": 0, "end": 60},
    {"kind": "instance_failure", "service": "orders", "mean_time_to_failure": "10min", "recovery_rate": 0.1},
]


@fuzz(600)
@given(st.lists(st.sampled_from(EDGE_CASES), min_size=1, max_size=2).flatmap(lambda cases: st.one_of(
    st.just(cases), mutated(cases, max_edits=1, keys=["kind", "start", "end", "at", "factor", "classes", "service",
                                                      "share", "timeout"]))))
def test_edge_cases(cases):
    from twin.load import scenarios

    clean(scenarios.parse, cases, source="scenarios.yaml")


SKELETON_TEXT = (MODELS / "reference" / "traced_shop.skeleton.yaml").read_text()


@fuzz(300)
@given(st.one_of(mutated(yaml.safe_load(SKELETON_TEXT)).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                 text_mutated(SKELETON_TEXT)))
def test_skeletons(scratch, text):
    from twin.calibrate.skeleton import load_skeleton

    path = scratch / "skeleton.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(load_skeleton, path)
