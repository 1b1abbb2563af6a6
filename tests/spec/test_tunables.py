"""Tunables: typed domains bound to model fields, set by name and validated like the file."""

import pytest

from tests.conftest import MODELS
from twin.spec import SpecError, apply_params, current_params, load_model

SHOP = MODELS / "reference" / "shop.yaml"

TUNABLE_MODEL = """\
name: t
classes:
  get: {share: 1.0, entry: cache, keys: {count: 100}}
caches:
  cache: {capacity_bytes: 1MiB, backend: api}
services:
  api:
    workers: 2
    service_time_s: 0.01
tunables:
"""


def test_design_tunables_are_expressible():
    m = load_model(SHOP)
    assert {"memory_size", "data_structure", "serialization_method", "recovery_rate", "frontend_workers",
            "orders_db_pool"} <= set(m.tunables)
    assert m.tunables["memory_size"].unit == "bytes"
    assert m.tunables["memory_size"].low == 8 * 2**20
    p = current_params(m)
    assert p["memory_size"] == 64 * 2**20 and p["data_structure"] == "hash"


def test_param_sets_every_target_with_units():
    m = load_model(SHOP, params={"memory_size": "512MiB", "data_structure": "tree", "recovery_rate": "0.2",
                                 "orders_db_pool": "12", "serialization_method": "msgpack"})
    cache = m.caches["product_cache"]
    assert cache.capacity_bytes == 512 * 2**20 and cache.data_structure == "tree"
    assert cache.serialization_method == "msgpack"
    assert m.services["search"].failures.recovery_rate_per_s == 0.2
    assert m.services["orders"].pools["db"].size == 12


@pytest.mark.parametrize("params,message", [
    ({"memory_size": "4GiB"}, "memory_size: expected an integer in [8MiB, 1GiB] (log scale), got 4GiB"),
    ({"data_structure": "heap"}, "expected one of hash, tree, list, got 'heap'"),
    ({"frontend_workers": "2.5"}, "expected an integer in [4, 64]"),
    ({"memory_sise": "1GiB"}, "unknown tunable (did you mean 'memory_size'?)"),
])
def test_param_out_of_domain(params, message):
    with pytest.raises(SpecError) as info:
        load_model(SHOP, params=params)
    assert message in str(info.value)
    assert str(info.value).startswith("--param: ")


def test_apply_params_returns_new_model():
    m = load_model(SHOP)
    m2 = apply_params(m, {"frontend_workers": 32})
    assert m.services["frontend"].workers == 8 and m2.services["frontend"].workers == 32


@pytest.mark.parametrize("tunable,message", [
    ("  size: {type: int, low: 1KiB, high: 8MiB, targets: caches.cache.capacity_bytez}", "no such field"),
    ("  size: {type: int, low: 2MiB, high: 8MiB, targets: caches.cache.capacity_bytes}",
     "the model's current value at caches.cache.capacity_bytes is outside the domain"),
    ("  size: {type: int, low: 8MiB, high: 1MiB, targets: caches.cache.capacity_bytes}", "expected finite low < high"),
    ("  pol: {type: categorical, choices: [lru, lfu], low: 1, targets: caches.cache.policy}",
     "a categorical tunable takes 'choices'"),
    ("  w: {type: int, low: 0, high: 8, log: true, targets: services.api.workers}", "expected low > 0"),
    ("  w: {type: float, low: 1, high: 8, targets: caches.cache.policy}", "needs a numeric field"),
    ("  w: {type: int, low: 1, high: 8, targets: services.api}", "path to a single value"),
    ("  w: {type: int, low: 1, high: 8, step: 0.5, targets: services.api.workers}", "a whole-number step"),
])
def test_bad_tunables(write_yaml, tunable, message):
    with pytest.raises(SpecError, match="tunables") as info:
        load_model(write_yaml(TUNABLE_MODEL + tunable + "\n"))
    assert message in str(info.value)


def test_param_value_must_fit_the_field(write_yaml):
    path = write_yaml(TUNABLE_MODEL + "  w: {type: float, low: 1, high: 8, targets: services.api.workers}\n")
    with pytest.raises(SpecError, match="services.api.workers: expected a whole number"):
        load_model(path, params={"w": 2.5})
