"""The policy engine: blends in the tunables' domains, refuses far profiles, holds with hysteresis."""

from datetime import datetime, timezone

import pytest

from tests.conftest import MODELS, mmc_model
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
    # shop.yaml declares memory_size and frontend_workers monotone: increasing, so at a load between
    # the two they are held to the busier regime's values (the blend above would be below them)
    assert d.params["memory_size"] == HIGH["memory_size"] and d.params["frontend_workers"] == 16
    assert d.params["data_structure"] in ("hash", "tree") and len(d.neighbours) == 2
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


# --- never extrapolated: the M/M/c of the report (0.2 s jobs; 100/s needs 24 workers, 200/s 44) ---------------
MMC = mmc_model(1, 80).replace("targets: services.server.workers}", "targets: services.server.workers, "
                                                                      "monotone: increasing}")


@pytest.fixture(scope="module")
def mmc(tmp_path_factory):
    path = tmp_path_factory.mktemp("mmc") / "mmc.yaml"
    path.write_text(MMC)
    return load_model(path)


def mmc_policies():
    out = []
    for regime, rate, workers in (("quiet", 100.0, 24), ("busy", 200.0, 44)):
        load = {"requests_per_s": rate}
        out.append(Policy(len(out), "mmc_sized", "exp", regime, 1, 1.0, {"workers": workers}, load, load_vector(load),
                          {}, datetime.now(timezone.utc), {"latency_mean_s": 0.25}))
    return out


def test_above_the_busiest_or_below_the_quietest_regime_is_refused_even_when_close(mmc):
    # 400/s is one doubling from 200/s: within max_distance 2, yet c=44 there would be 1.8 busy
    d = policy_for({"requests_per_s": 400.0}, mmc_policies(), mmc, max_distance=2.0)
    assert d.params is None and d.sweep_needed and d.out_of_range == "above"
    assert "above the busiest stored regime, exp/busy (200 req/s)" in d.reason and "--sweep EXPERIMENT" in d.reason
    d = policy_for({"requests_per_s": 60.0}, mmc_policies(), mmc, max_distance=2.0)
    assert d.params is None and d.out_of_range == "below" and "below the quietest stored regime, exp/quiet" in d.reason
    d = policy_for({"requests_per_s": 200.0}, mmc_policies(), mmc)  # on the busiest itself: inside
    assert d.params == {"workers": 44} and d.out_of_range is None


def test_a_capacity_declared_monotone_never_blends_below_the_nearest_busier_regime(mmc, tmp_path):
    d = policy_for({"requests_per_s": 150.0}, mmc_policies(), mmc)
    assert d.params["workers"] == 44 and d.out_of_range is None and len(d.neighbours) == 2
    assert d.constraints == {"latency_mean_s": 0.25}  # from the neighbours, for the check
    (tmp_path / "plain.yaml").write_text(mmc_model(1, 80))  # undeclared: the blend lies between, below 44
    plain = policy_for({"requests_per_s": 150.0}, mmc_policies(), load_model(tmp_path / "plain.yaml"))
    assert 24 < plain.params["workers"] < 44


def test_a_class_mix_never_swept_is_refused(shop):
    stored = [policy("browse-heavy", 100, LOW, mix={"mix_browse": 0.9, "mix_checkout": 0.1}),
              policy("mixed", 100, HIGH, mix={"mix_browse": 0.6, "mix_checkout": 0.4})]
    d = policy_for({"requests_per_s": 100.0, "mix_browse": 0.2, "mix_checkout": 0.8}, stored, shop, max_distance=9)
    assert d.params is None and d.out_of_range == "mix" and "class browse's share 0.20 is outside the shares " \
        "swept (0.60 to 0.90)" in d.reason


def test_the_schedule_flag_keeps_the_nearest_and_says_so(mmc):
    d = policy_for({"requests_per_s": 230.0}, mmc_policies(), mmc, k=1, outside="flag")
    assert d.params == {"workers": 44} and d.out_of_range == "above" and d.sweep_needed
    assert "outside the stored range" in d.reason


@pytest.mark.parametrize("tunable,message", [
    ("{type: categorical, choices: [a, b], targets: services.server.load_balancer, monotone: increasing}",
     "tunables.mode: 'monotone' is for int and float tunables; a categorical one has no order"),
    ("{type: int, low: 1, high: 8, targets: services.server.workers, monotone: up}",
     "tunables.mode.monotone: expected one of 'increasing' or 'decreasing', got 'up'"),
])
def test_a_monotone_declaration_is_checked_with_its_field_named(tmp_path, tunable, message):
    from twin.spec import SpecError

    path = tmp_path / "m.yaml"
    path.write_text(mmc_model().split("tunables:")[0] + f"tunables:\n  mode: {tunable}\n")
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        load_model(path)
