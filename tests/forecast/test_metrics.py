import numpy as np
import pytest

from twin.forecast.metrics import (coverage, interval_score, mase, mase_scale, pinball, pinball_by_quantile,
                                   smape)


def seasonal(n=24 * 10, m=24, seed=0):
    rng = np.random.default_rng(seed)
    return 50 + 20 * np.sin(2 * np.pi * np.arange(n) / m) + rng.normal(0, 3, n)


def test_mase_scale_is_the_in_sample_seasonal_naive_mae():
    x = np.array([1.0, 4.0, 2.0, 8.0, 3.0, 5.0])
    assert mase_scale(x, 2) == pytest.approx((1 + 4 + 1 + 3) / 4)
    assert mase_scale(x, 1) == pytest.approx((3 + 2 + 6 + 5 + 2) / 5)


def test_seasonal_naive_scores_mase_one_on_its_own_training_data():
    x, m = seasonal(), 24
    assert mase(x[m:], x[:-m], mase_scale(x, m)) == pytest.approx(1.0)


def test_mase_scale_falls_back_to_lag_one_when_shorter_than_two_seasons():
    x = np.array([1.0, 3.0, 2.0, 6.0, 2.0])
    assert mase_scale(x, 3) == pytest.approx((2 + 1 + 4 + 4) / 4)


def test_mase_scale_errors():
    with pytest.raises(ValueError, match="too short"):
        mase_scale([5.0], 24)
    with pytest.raises(ValueError, match="scale is 0"):
        mase_scale(np.tile([1.0, 2.0, 3.0], 4), 3)  # exactly periodic
    with pytest.raises(ValueError, match="non-empty"):
        mase_scale([], 1)


def test_mase_hand_values_and_per_step_scales():
    assert mase([10.0, 20.0], [12.0, 14.0], 4.0) == pytest.approx((2 + 6) / 2 / 4)
    assert mase([10.0, 20.0], [12.0, 14.0], [2.0, 3.0]) == pytest.approx((1 + 2) / 2)
    assert mase([1.0, 2.0], [1.0, 2.0], 1.0) == 0.0
    with pytest.raises(ValueError, match="positive"):
        mase([1.0], [2.0], 0.0)
    with pytest.raises(ValueError, match="differ in length"):
        mase([1.0, 2.0], [1.0], 1.0)


def test_smape_hand_values():
    assert smape([100.0], [100.0]) == 0.0
    assert smape([100.0], [0.0]) == pytest.approx(200.0)
    assert smape([100.0, 50.0], [50.0, 50.0]) == pytest.approx(200 * (50 / 150) / 2)
    assert smape([0.0, 0.0], [0.0, 0.0]) == 0.0  # both zero: no error


def test_pinball_of_a_perfect_median_is_zero_and_hand_values():
    y = seasonal(50)
    assert pinball(y, y[:, None], (0.5,)) == 0.0
    q = np.column_stack([y - 2, y, y + 2])
    per = pinball_by_quantile(y, q, (0.1, 0.5, 0.9))
    # y above the 0.1 quantile by 2: 0.1 * 2; below the 0.9 quantile by 2: (1 - 0.9) * 2
    assert per == pytest.approx([0.2, 0.0, 0.2])
    assert pinball(y, q, (0.1, 0.5, 0.9)) == pytest.approx(0.4 / 3)
    # the median's pinball loss is half the absolute error
    assert pinball([3.0, 7.0], [[5.0], [5.0]], (0.5,)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        pinball(y, q, (0.1, 0.9))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        pinball([1.0], [[1.0]], (1.0,))


def test_coverage_counts_bounds_inclusive():
    y = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert coverage(y, [1.0] * 5, [3.0] * 5) == pytest.approx(3 / 5)
    assert coverage(y, [-1.0] * 5, [9.0] * 5) == 1.0
    assert coverage(y, [5.0] * 5, [9.0] * 5) == 0.0


def test_interval_score_is_width_plus_miss_penalties():
    y, lo, hi = [5.0, 0.0, 13.0], [4.0, 4.0, 4.0], [10.0, 10.0, 10.0]
    # widths 6 each; misses by 4 below and 3 above, each times 2 / alpha = 20
    assert interval_score(y, lo, hi, 0.1) == pytest.approx((18 + 80 + 60) / 3)
    with pytest.raises(ValueError, match="alpha"):
        interval_score(y, lo, hi, 1.5)
