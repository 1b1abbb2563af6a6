"""The policy engine: blends in the tunables' domains, refuses far profiles, holds with hysteresis."""

from datetime import datetime, timezone

import pytest

from tests.conftest import MODELS
from twin.policy.engine import blend, policy_for
from twin.policy.store import Policy
from twin.spec import load_model
from twin.sweep.regimes import load_vector


@pytest.fixture(scope="module")
def shop():
    return load_model(MODELS / "reference" / "shop.yaml")


def policy(regime, rate, params, confidence=1.0, mix=None):
    load = {"requests_per_s": rate, **(mix or {})}
    return Policy(hash(regime) % 1000, "shop", "exp", regime, 1, confidence, params, load, load_vector(load), {},
                  datetime.now(timezone.utc))


LOW = {"frontend_workers": 8, "memory_size": 8 * 2**20, "data_structure": "hash"}
HIGH = {"frontend_workers": 16, "memory_size": 32 * 2**20, "data_structure": "tree"}


def test_on_a_stored_profile_its_parameters_come_back(shop):
    d = policy_for({"requests_per_s": 100.0}, [policy("low", 100, LOW, 0.9), policy("high", 400, HIGH)], shop)
    assert d.params == LOW and d.confidence == pytest.approx(0.9, rel=0.05)
    assert d.neighbours[0]["regime"] == "low" and not d.sweep_needed


def test_between_two_profiles_numbers_blend_in_their_domain_and_categories_vote(shop):
    p = blend(shop, [(LOW, 1.0), (HIGH, 1.0)])
    assert p["frontend_workers"] == 12  # linear domain, an integer
    assert p["memory_size"] == 16 * 2**20  # log domain: the geometric mean
    p = blend(shop, [(LOW, 1.0), (HIGH, 3.0)])
    assert p["data_structure"] == "tree" and p["frontend_workers"] == 14
    d = policy_for({"requests_per_s": 200.0}, [policy("low", 100, LOW), policy("high", 400, HIGH)], shop)
    assert d.params["memory_size"] == pytest.approx(16 * 2**20, rel=0.01) and len(d.neighbours) == 2
    assert 0 < d.confidence < 1


def test_far_from_every_profile_it_asks_for_a_sweep(shop):
    d = policy_for({"requests_per_s": 5000.0}, [policy("low", 100, LOW), policy("high", 400, HIGH)], shop,
                   max_distance=1.0)
    assert d.params is None and d.sweep_needed and "no close neighbour" in d.reason and "exp/high" in d.reason


def test_the_mix_counts_in_the_distance(shop):
    browse = policy("browse-heavy", 100, LOW, mix={"mix_browse": 0.9, "mix_checkout": 0.1})
    checkout = policy("checkout-heavy", 100, HIGH, mix={"mix_browse": 0.3, "mix_checkout": 0.7})
    d = policy_for({"requests_per_s": 100.0, "mix_browse": 0.85, "mix_checkout": 0.15}, [browse, checkout], shop, k=1)
    assert d.params == LOW


def test_hysteresis_holds_settings_until_the_other_regime_is_clearly_closer(shop):
    stored = [policy("low", 100, LOW), policy("high", 400, HIGH)]
    held = policy_for({"requests_per_s": 100.0}, stored, shop, k=1)
    # a little past the midpoint (200/s): without hysteresis it flips, with it it holds
    assert policy_for({"requests_per_s": 215.0}, stored, shop, k=1).params == HIGH
    d = policy_for({"requests_per_s": 215.0}, stored, shop, k=1, hysteresis=0.3, held=held)
    assert d.held and d.params == LOW and "not 30% closer" in d.reason
    d = policy_for({"requests_per_s": 380.0}, stored, shop, k=1, hysteresis=0.3, held=held)
    assert not d.held and d.params == HIGH
    # a drift within the regime keeps the held settings as they were
    near = policy_for({"requests_per_s": 110.0}, stored, shop, k=2, held=held)
    assert near.held and near.params == held.params
