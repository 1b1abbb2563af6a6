"""Selection on earlier windows, scored on later ones; a default kept unless clearly beaten."""

import numpy as np
import pandas as pd
import pytest

from twin.forecast.backtest import backtest
from twin.forecast.baselines import SeasonalNaive
from twin.forecast.base import History
from twin.forecast.run import choose, models
from twin.forecast.select import Ensemble, select, window_scores


def hist(days=28, seed=0, weekly=1.0):
    """A daily cycle, and a level of its own on each weekday (times ``weekly``)."""
    idx = pd.date_range("2026-03-02", periods=24 * days, freq="h", tz="UTC")
    rng = np.random.default_rng(seed)
    level = weekly * np.array([0.0, 40.0, -10.0, 30.0, 5.0, 60.0, -20.0])[idx.dayofweek.to_numpy()]
    y = 100 + 40 * np.sin(2 * np.pi * np.arange(len(idx)) / 24) + level
    return History(pd.DataFrame({"requests_per_s": y + rng.normal(0, 3, len(idx))}, index=idx))


@pytest.fixture(scope="module")
def result():
    h = hist()
    return backtest([SeasonalNaive("daily"), SeasonalNaive("weekly"),
                     Ensemble((SeasonalNaive("daily"), SeasonalNaive("weekly")), name="ensemble")],
                    h, horizon=24, n_windows=12, season=24)


def test_selection_is_made_on_early_windows_and_scored_on_late_ones(result):
    sel = select(result, "requests_per_s")
    assert sel.chosen == "seasonal_naive_weekly"  # a weekly effect: last week beats yesterday
    assert len(sel.selection_origins) == 6 and len(sel.evaluation_origins) == 6
    assert max(sel.selection_origins) < min(sel.evaluation_origins)
    per = window_scores(result, "requests_per_s", sel.evaluation_origins)
    assert sel.score("seasonal_naive_weekly") == pytest.approx(per["seasonal_naive_weekly"].mean())


def test_a_default_is_kept_unless_clearly_beaten(result):
    # weekly naive beats the ensemble on every window here: clearly
    assert select(result, "requests_per_s", default="ensemble").chosen == "seasonal_naive_weekly"
    assert choose(result, "requests_per_s") == "seasonal_naive_weekly"
    # without a weekly effect the two naives tie, and the ensemble is kept
    h = hist(weekly=0.0)
    tie = backtest([SeasonalNaive("daily"), SeasonalNaive("weekly"),
                    Ensemble((SeasonalNaive("daily"), SeasonalNaive("weekly")), name="ensemble")],
                   h, horizon=24, n_windows=12, season=24)
    assert select(tie, "requests_per_s", default="ensemble").chosen == "ensemble"


def test_longest_seasonal_naive_and_model_names():
    short, long = hist(days=10), hist(days=28)
    assert SeasonalNaive("longest").fit(short).m == 24
    assert SeasonalNaive("longest").fit(long).m == 24 * 7
    [m] = models(["mstl+events"], 24, events=True)
    assert m.name == "mstl+events"
    [m] = models(["mstl"], 24)
    assert m.name == "mstl"
    [e] = models(["ensemble"], 24, events=True)
    assert [x.name for x in e.members] == ["mstl+events", "lstm", "seasonal_naive_longest+events"]


def test_online_selection_uses_only_windows_that_had_ended(result):
    from twin.forecast.select import online

    sel, choice = online(result, "requests_per_s", recent=8)
    first, *rest = result.origins
    assert choice[first] == "ensemble"  # nothing had ended yet: the default
    assert all(choice[o] == "seasonal_naive_weekly" for o in rest[4:])  # clearly better once seen
    assert sel.forecasters == ("selected",) and len(sel.forecasts) == len(result.forecasts) // 3
    # the actuals of the last window cannot change any choice
    f = result.forecasts.copy()
    f.loc[f["origin"] == result.origins[-1], "actual"] *= 100
    _, again = online(type(result)(**{**result.__dict__, "forecasts": f}), "requests_per_s", recent=8)
    assert again == choice
